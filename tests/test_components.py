"""The backbones' shared pieces (speechbrain_ext.models.components): the one
encoder layer loop (LayerStack), the BERT initialisation, the config base and
SpeechBrain's length_to_mask for frame masks."""
import pytest
import torch
from speechbrain.dataio.dataio import length_to_mask
from torch import nn

from speechbrain_ext.models.components import (BackboneConfig, LayerStack, cnn_features,
                                               init_bert_weights)
from speechbrain_ext.models.registry import build_backbone
from speechbrain_ext.models.sew import SEWConfig, SEWDConfig
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config


class Recorder(nn.Module):
    """Adds ``step`` and records what it was called with."""

    def __init__(self, step):
        super().__init__()
        self.step, self.calls = step, []

    def forward(self, x, key_mask=None, **kwargs):
        self.calls.append((key_mask, kwargs))
        return x + self.step


def recorders(n):
    return [Recorder(10.0 ** i) for i in range(n)]


def test_the_loop_returns_the_input_then_every_layers_output():
    stack = LayerStack(recorders(3), layerdrop=0.0).train()
    x = torch.zeros(2, 5, 4)
    states = stack(x)
    assert len(states) == 4 and states[0] is x
    for i, expected in enumerate([0.0, 1.0, 11.0, 111.0]):
        assert torch.equal(states[i], torch.full_like(x, expected))


def test_layerdrop_skips_layers_only_in_training():
    x = torch.zeros(1, 3, 2)
    stack = LayerStack(recorders(4), layerdrop=1.0)
    assert all(s is x for s in stack.train()(x))  # every layer dropped: states repeat the input
    assert stack.eval()(x)[-1].max() == 1111.0  # eval runs every layer


def test_layerdrop_draws_once_per_layer_from_the_global_generator():
    """One torch.rand(()) per layer, in training with layerdrop > 0 only: the
    recipe reseeds the global generator per batch, so the drops reproduce."""
    x = torch.zeros(1, 2, 1)
    stack = LayerStack(recorders(6), layerdrop=0.5).train()
    torch.manual_seed(3)
    draws = [torch.rand(()) for _ in range(6)]
    after = torch.rand(())
    torch.manual_seed(3)
    states = stack(x)
    assert torch.equal(torch.rand(()), after)
    kept = [not (d < 0.5) for d in draws]
    assert [not torch.equal(a, b) for a, b in zip(states, states[1:])] == kept
    for training, layerdrop in ((False, 0.5), (True, 0.0)):  # no draw at all
        stack.train(training).layerdrop = layerdrop
        torch.manual_seed(3)
        stack(x)
        assert torch.equal(torch.rand(()), draws[0])


def test_key_masks_and_layer_arguments_reach_every_layer():
    layers = recorders(3)
    stack = LayerStack(layers).eval()
    mask = torch.tensor([[True, True, False], [True, True, True]])
    stack(torch.zeros(2, 3, 1), mask, rel_index="shared")
    assert all(layer.calls[-1][0] is mask and layer.calls[-1][1] == {"rel_index": "shared"}
               for layer in layers)
    for unpadded in (None, torch.ones(2, 3, dtype=torch.bool)):  # no key mask: unmasked attention
        stack(torch.zeros(2, 3, 1), unpadded)
        assert all(layer.calls[-1][0] is None for layer in layers)


def test_a_slice_is_a_stack_with_the_same_layerdrop():
    stack = LayerStack(recorders(4), layerdrop=0.3)
    part = stack[1:3]
    assert isinstance(part, LayerStack) and part.layerdrop == 0.3 and len(part) == 2
    assert isinstance(stack[0], Recorder)


@pytest.mark.parametrize("zoo, layers", [("w2v2_micro", "encoder.layers"),
                                         ("sew_micro", "encoder.layers"),
                                         ("sewd_micro", "encoder.encoder.layer")])
def test_every_backbone_runs_its_layers_through_a_layer_stack(zoo, layers):
    model = build_backbone({"zoo": zoo, "num_layers": 3, "layerdrop": 0.2}).eval()
    stack = model.get_submodule(layers)
    assert isinstance(stack, LayerStack) and stack.layerdrop == 0.2
    # the stack is the ModuleList itself: parameter names stay HF's
    assert any(name.startswith(f"{layers}.2.") for name in model.state_dict())
    seen = []
    for layer in stack:
        layer.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["key_mask"]),
                                        with_kwargs=True)
    with torch.no_grad():
        out = model(torch.randn(2, 8000), wav_lens=torch.tensor([1.0, 0.5]))
    squeezed_mask = (out.extra or {}).get("squeezed_frame_mask", out.frame_mask)
    assert len(seen) == 3 and all(torch.equal(m, squeezed_mask) for m in seen)


def test_bert_init_of_linears_and_embeddings_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 256), nn.Embedding(300, 256), nn.Linear(256, 8, bias=False),
                        nn.LayerNorm(256), nn.Conv1d(4, 4, 3))
    with torch.no_grad():
        net[3].weight.fill_(2.0)
    conv = net[4].weight.clone()
    torch.manual_seed(1)
    init_bert_weights(net)
    assert abs(net[0].weight.std().item() - 0.02) < 1e-3 and not net[0].bias.any()
    assert abs(net[1].weight.std().item() - 0.02) < 1e-3
    assert torch.equal(net[3].weight, torch.full((256,), 2.0))  # LayerNorm left as it was
    assert torch.equal(net[4].weight, conv)
    torch.manual_seed(1)  # drawn in modules() order
    expected = [torch.empty(256, 256).normal_(0, 0.02), torch.empty(300, 256).normal_(0, 0.02),
                torch.empty(8, 256).normal_(0, 0.02)]
    assert all(torch.equal(net[i].weight, w) for i, w in enumerate(expected))


# The defaults as they were before the config base: zoo sizes and saved
# checkpoints' configs depend on them.
WAV2VEC2_DEFAULTS = dict(extractor_mode="group_norm", conv_bias=False, normalize_waveform=False,
                         dim=768, num_layers=12, num_heads=12, ffn_dim=3072, pos_conv_kernel=128,
                         pos_conv_groups=16, layer_norm_first=False, layer_norm_eps=1e-5,
                         dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
                         dropout_input=0.1, layerdrop=0.05, feature_grad_mult=0.1)
SEW_DEFAULTS = {**{k: v for k, v in WAV2VEC2_DEFAULTS.items() if k != "layer_norm_first"},
                "pos_conv_kernel": 31, "squeeze_factor": 2, "feature_layer_norm_eps": 1e-5}
SEWD_DEFAULTS = {**SEW_DEFAULTS, "layer_norm_eps": 1e-7, "position_buckets": 256,
                 "max_relative_positions": 512}


@pytest.mark.parametrize("cls, defaults, first_conv, num_conv", [
    (Wav2Vec2Config, WAV2VEC2_DEFAULTS, (512, 10, 5), 7),
    (SEWConfig, SEW_DEFAULTS, (64, 10, 5), 13),
    (SEWDConfig, SEWD_DEFAULTS, (64, 10, 5), 13)])
def test_configs_extend_the_base_with_their_defaults_unchanged(cls, defaults, first_conv, num_conv):
    values = cls().to_dict()
    conv = values.pop("conv_layers")
    assert values == defaults
    assert conv[0] == first_conv and len(conv) == num_conv
    shared = [f for f in BackboneConfig().to_dict()]
    assert list(cls().to_dict())[: len(shared)] == shared  # the shared fields first
    # a checkpoint's config dict (any key order, YAML lists) comes back equal
    old = dict(reversed(list(cls.micro().to_dict().items())), conv_layers=[list(c) for c in conv])
    assert cls.from_dict(old).to_dict() == {**old, "conv_layers": conv}
    with pytest.raises(ValueError, match="unknown"):
        cls.from_dict({"no_such_field": 1})


def test_encoder_kwargs_are_the_shared_encoder_arguments():
    config = SEWDConfig.micro()
    kwargs = config.encoder_kwargs("squeeze_factor")
    assert kwargs["squeeze_factor"] == 2 and kwargs["layer_norm_eps"] == 1e-7
    assert "activation_dropout" not in kwargs and "dropout_input" not in kwargs


@pytest.mark.parametrize("lengths, frames", [([3, 1, 0], 4), ([5, 2], 5), ([0, 0], 0), ([7], 3)])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_length_to_mask_gives_the_frame_masks_we_had(lengths, frames, dtype):
    lengths = torch.tensor(lengths, dtype=dtype)
    ours = torch.arange(frames)[None, :] < lengths[:, None]  # the formula it replaced
    theirs = length_to_mask(lengths, frames, dtype=torch.bool)
    assert theirs.dtype == torch.bool and theirs.device == lengths.device and torch.equal(theirs, ours)


def test_cnn_frame_mask_counts_frames_from_relative_lengths():
    model = build_backbone({"zoo": "w2v2_micro"}).eval()
    with torch.no_grad():
        _, mask, _ = cnn_features(model, torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    assert mask.dtype == torch.bool and mask.sum(dim=1).tolist() == [49, 24]
    assert mask[1, :24].all() and not mask[1, 24:].any()
