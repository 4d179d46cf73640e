"""Tests of the momentum (EMA) target network (speechbrain_ext.pretraining.ema)."""
import pytest
import torch

from speechbrain_ext.pretraining.ema import ExponentialMovingAverage, ema_update


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


def test_target_gets_no_gradient():
    online = make_net(2)
    ema = ExponentialMovingAverage(online, decay=0.9)
    x = torch.randn(5, 4)
    loss = (online(x) - ema(x)).pow(2).sum()
    loss.backward()
    assert all(p.grad is None for p in ema.target.parameters())
    assert all(not p.requires_grad for p in ema.parameters())
    assert all(p.grad is not None for p in online.parameters())


def test_repeated_updates_follow_online():
    online = make_net(3)
    ema = ExponentialMovingAverage(online, decay=0.5)
    start = [p.clone() for p in ema.target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(2.0)
    for _ in range(3):
        ema.update(online)
    for p, s in zip(ema.target.parameters(), start):
        torch.testing.assert_close(p, s + 2.0 * (1 - 0.5**3))
    ema.update(online, decay=0.0)
    for p, q in zip(ema.target.parameters(), online.parameters()):
        assert torch.equal(p, q)
    # state dict keys are the wrapped module's under "target."
    assert set(ema.state_dict()) == {f"target.{k}" for k in online.state_dict()}
