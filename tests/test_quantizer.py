"""Tests of the Gumbel product quantizer (speechbrain_ext.pretraining.quantizer)."""
import math

import numpy as np
import pytest
import torch

from speechbrain_ext.pretraining.quantizer import GumbelVectorQuantizer


def make_quantizer(**kwargs):
    torch.manual_seed(0)
    options = dict(num_groups=2, num_vars=8, codevector_dim=12)
    options.update(kwargs)
    return GumbelVectorQuantizer(16, **options)


def numpy_perplexity(probs):
    """exp(entropy) of the frame-averaged distribution, summed over groups."""
    probs = np.asarray(probs, dtype=np.float64)  # [frames, groups, vars]
    total = 0.0
    for g in range(probs.shape[1]):
        avg = probs[:, g, :].mean(axis=0)
        total += math.exp(-np.sum(avg * np.log(avg + 1e-7)))
    return total


def test_parameter_names_and_shapes_match_hf():
    q = GumbelVectorQuantizer(512)  # wav2vec2-base sizes
    shapes = {k: tuple(v.shape) for k, v in q.state_dict().items()}
    assert shapes == {
        "codevectors": (1, 640, 128),
        "weight_proj.weight": (640, 512),
        "weight_proj.bias": (640,),
    }
    assert q.num_codevectors == 640


def test_shapes_any_leading_dims():
    q = make_quantizer()
    codes, stats = q(torch.randn(4, 7, 16))
    assert codes.shape == (4, 7, 12) and codes.dtype == torch.float32
    codes, _ = q(torch.randn(9, 16))
    assert codes.shape == (9, 12)
    assert stats["prob_perplexity"].dim() == 0


def test_temperature_schedule():
    q = make_quantizer()
    assert q.temperature == 2.0
    q.set_num_updates(0)
    assert q.temperature == 2.0
    q.set_num_updates(100_000)
    assert q.temperature == pytest.approx(2.0 * 0.999995**100_000)  # ~1.213
    assert q.temperature == pytest.approx(2.0 * math.exp(-0.5), rel=1e-5)
    q.set_num_updates(400_000)  # 2 * e^-2 = 0.27 < floor
    assert q.temperature == 0.5
    _, stats = q(torch.randn(3, 16))
    assert stats["temperature"] == 0.5


def test_eval_is_argmax_gather():
    q = make_quantizer().eval()
    x = torch.randn(20, 16)
    codes, _ = q(x)
    logits = q.weight_proj(x).view(20, 2, 8)
    book = q.codevectors.view(2, 8, 6)
    for n in range(20):
        expected = torch.cat([book[g, logits[n, g].argmax()] for g in range(2)])
        torch.testing.assert_close(codes[n], expected)


def test_training_selects_codewords():
    q = make_quantizer().train()
    codes, _ = q(torch.randn(30, 16))
    book = q.codevectors.detach().view(2, 8, 6)
    for g in range(2):
        part = codes.detach()[:, g * 6:(g + 1) * 6]
        distance = (part[:, None, :] - book[g][None]).abs().amax(dim=-1)
        assert (distance.min(dim=1).values < 1e-5).all()


def test_perplexities_against_numpy():
    q = make_quantizer().eval()
    x = torch.randn(50, 16)
    _, stats = q(x)
    logits = q.weight_proj(x).view(50, 2, 8).detach().numpy().astype(np.float64)
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    hard = np.zeros_like(soft)
    for n in range(50):
        for g in range(2):
            hard[n, g, np.argmax(logits[n, g])] = 1.0
    assert stats["prob_perplexity"].item() == pytest.approx(numpy_perplexity(soft), rel=1e-5)
    assert stats["code_perplexity"].item() == pytest.approx(numpy_perplexity(hard), rel=1e-5)
    assert not stats["code_perplexity"].requires_grad


def test_perplexity_bounds():
    q = make_quantizer().eval()
    with torch.no_grad():
        q.weight_proj.weight.zero_()
        q.weight_proj.bias.zero_()
    _, stats = q(torch.randn(10, 16))  # uniform softmax, one code used per group
    assert stats["prob_perplexity"].item() == pytest.approx(16.0, rel=1e-5)
    assert stats["code_perplexity"].item() == pytest.approx(2.0, rel=1e-5)


def test_gradients_flow_in_training():
    q = make_quantizer().train()
    x = torch.randn(25, 16, requires_grad=True)
    codes, stats = q(x)
    (codes.pow(2).sum() - stats["prob_perplexity"]).backward()
    assert q.weight_proj.weight.grad.abs().sum() > 0
    assert q.weight_proj.bias.grad.abs().sum() > 0
    assert q.codevectors.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_fp32_under_autocast():
    q = make_quantizer().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes, stats = q(torch.randn(6, 16).bfloat16())
    assert codes.dtype == torch.float32
    assert stats["prob_perplexity"].dtype == torch.float32
