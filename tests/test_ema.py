"""Tests of the momentum (EMA) target network (speechbrain_ext.pretraining.ema)."""
import pytest
import torch

from speechbrain_ext.pretraining.ema import ema_update


def make_net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2)
    )


def test_update_against_manual_computation():
    target, online = make_net(0), make_net(1)
    online.train()(torch.randn(8, 4))  # changes BatchNorm running stats of online
    before = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update(target, online, decay=0.75)
    online_state = online.state_dict()
    param_names = {name for name, _ in target.named_parameters()}
    for name, value in target.state_dict().items():
        if name in param_names:
            expected = 0.75 * before[name] + 0.25 * online_state[name]
            torch.testing.assert_close(value, expected)
        else:  # buffers are copied
            assert torch.equal(value, online_state[name])
    assert int(target[1].num_batches_tracked) == 1


def test_decay_limits_and_errors():
    target, online = make_net(0), make_net(1)
    kept = [p.clone() for p in target.parameters()]
    ema_update(target, online, decay=1.0)
    for p, q in zip(target.parameters(), kept):
        assert torch.equal(p, q)
    ema_update(target, online, decay=0.0)
    for p, q in zip(target.parameters(), online.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="decay"):
        ema_update(target, online, decay=1.5)
    with pytest.raises(ValueError, match="differ"):
        ema_update(torch.nn.Linear(4, 6), make_net(0), 0.5)


def test_target_of_the_noncontrastive_model_gets_no_gradient():
    from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel

    model = NonContrastiveModel({"zoo": "w2v2_micro"})
    out = model(torch.randn(2, 16000))
    out["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.target.parameters())
    assert any(p.grad is not None for p in model.online.parameters())


def test_repeated_updates_follow_online():
    import copy

    online = make_net(3)
    target = copy.deepcopy(online)
    start = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(2.0)
    for _ in range(3):
        ema_update(target, online, decay=0.5)
    for p, s in zip(target.parameters(), start):
        torch.testing.assert_close(p, s + 2.0 * (1 - 0.5**3))
    ema_update(target, online, decay=0.0)
    for p, q in zip(target.parameters(), online.parameters()):
        assert torch.equal(p, q)
