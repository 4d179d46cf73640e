"""Tests of paper 000's Barlow losses (speechbrain_ext.pretraining.barlow),
against direct loop implementations of the paper's formulas."""
import math

import numpy as np
import pytest
import torch

from speechbrain_ext.pretraining.barlow import (SequenceBarlowLoss, combine_losses,
                                                merged_cross_correlation, time_merged_loss,
                                                time_unrolled_loss, unrolled_cross_correlation)

EPS = 1e-5


def paper_loss(c):
    """sum_i (1 - C_ii)^2 / N + sum_{i != j} 2 C_ij^2 / (N (N - 1)), by loops."""
    n = len(c)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i == j:
                total += (1.0 - c[i][j]) ** 2 / n
            else:
                total += 2.0 * c[i][j] ** 2 / (n * (n - 1))
    return total


def batchnorm_columns(matrix):
    """Standardise each column with its mean and biased variance (+ eps)."""
    rows, cols = matrix.shape
    out = np.empty_like(matrix)
    for col in range(cols):
        mean = sum(matrix[:, col]) / rows
        var = sum((matrix[:, col] - mean) ** 2) / rows
        out[:, col] = (matrix[:, col] - mean) / math.sqrt(var + EPS)
    return out


def correlation(za, zb):
    rows = za.shape[0]
    c = np.zeros((za.shape[1], zb.shape[1]))
    for i in range(za.shape[1]):
        for j in range(zb.shape[1]):
            c[i, j] = sum(za[k, i] * zb[k, j] for k in range(rows)) / rows
    return c


def reference_unrolled(online, target, mask):
    a, b = online.double().numpy(), target.double().numpy()
    rows_a, rows_b = [], []
    for u in range(a.shape[0]):
        for t in range(a.shape[1]):
            if mask[u, t]:
                rows_a.append(a[u, t])
                rows_b.append(b[u, t])
    za = batchnorm_columns(np.array(rows_a))
    zb = batchnorm_columns(np.array(rows_b))
    return paper_loss(correlation(za, zb))


def reference_merged_unpadded(online, target):
    """[B, T, F] -> [T * F, B] literally, BatchNorm over the rows, C = B x B."""
    a, b = online.double().numpy(), target.double().numpy()
    batch, time, feat = a.shape
    ma, mb = np.zeros((time * feat, batch)), np.zeros((time * feat, batch))
    for u in range(batch):
        for t in range(time):
            for f in range(feat):
                ma[t * feat + f, u] = a[u, t, f]
                mb[t * feat + f, u] = b[u, t, f]
    return paper_loss(correlation(batchnorm_columns(ma), batchnorm_columns(mb)))


def reference_merged_padded(online, target, mask):
    """C[i, j] = the paper's statistic over the time steps valid in both i and j."""
    a, b = online.double().numpy(), target.double().numpy()
    batch = a.shape[0]
    c = np.zeros((batch, batch))
    for i in range(batch):
        for j in range(batch):
            steps = [t for t in range(a.shape[1]) if mask[i, t] and mask[j, t]]
            x = a[i, steps, :].reshape(-1, 1)
            y = b[j, steps, :].reshape(-1, 1)
            c[i, j] = correlation(batchnorm_columns(x), batchnorm_columns(y))[0, 0]
    return paper_loss(c)


def random_pair(batch, time, feat, seed):
    g = torch.Generator().manual_seed(seed)
    online = torch.randn(batch, time, feat, generator=g)
    target = 0.7 * online + 0.5 * torch.randn(batch, time, feat, generator=g) + 0.3
    return online, target


def prefix_mask(lengths, time):
    return torch.arange(time) < torch.tensor(lengths)[:, None]


def test_unrolled_matches_loop_reference():
    online, target = random_pair(3, 9, 4, seed=0)
    mask = prefix_mask([9, 5, 7], 9)
    got = time_unrolled_loss(online, target, mask).item()
    assert got == pytest.approx(reference_unrolled(online, target, mask), rel=1e-4)
    full = time_unrolled_loss(online, target).item()
    assert full == pytest.approx(
        reference_unrolled(online, target, torch.ones(3, 9, dtype=torch.bool)), rel=1e-4
    )


def test_merged_matches_paper_without_padding():
    online, target = random_pair(4, 6, 3, seed=1)
    expected = reference_merged_unpadded(online, target)
    assert time_merged_loss(online, target).item() == pytest.approx(expected, rel=1e-4)
    all_valid = torch.ones(4, 6, dtype=torch.bool)
    assert time_merged_loss(online, target, all_valid).item() == pytest.approx(expected, rel=1e-4)


def test_merged_with_padding_matches_pairwise_reference():
    online, target = random_pair(4, 8, 3, seed=2)
    mask = prefix_mask([8, 3, 6, 5], 8)
    got = time_merged_loss(online, target, mask).item()
    assert got == pytest.approx(reference_merged_padded(online, target, mask), rel=1e-4)
    # an arbitrary (non-prefix) validity pattern follows the same definition
    g = torch.Generator().manual_seed(3)
    holes = torch.rand(4, 8, generator=g) < 0.7
    holes[:, 0] = True
    got = time_merged_loss(online, target, holes).item()
    assert got == pytest.approx(reference_merged_padded(online, target, holes), rel=1e-4)


def test_diagonal_is_correlation_of_whole_utterance():
    online, _ = random_pair(3, 10, 4, seed=4)
    mask = prefix_mask([10, 4, 7], 10)
    c = merged_cross_correlation(online, online, mask)
    torch.testing.assert_close(c.diagonal(), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(c, c.T)


def test_padding_garbage_changes_nothing():
    online, target = random_pair(3, 7, 4, seed=5)
    mask = prefix_mask([7, 4, 6], 7)
    online.requires_grad_(True)
    base_u = time_unrolled_loss(online, target, mask)
    base_m = time_merged_loss(online, target, mask)
    (grad_clean,) = torch.autograd.grad(base_u + base_m, online)

    garbage = torch.full((3, 5, 4), 1e4)
    garbage[0, 1] = float("nan")
    garbage[2, 3, 1] = float("inf")
    online_pad = torch.cat([online.detach(), garbage], dim=1).requires_grad_(True)
    target_pad = torch.cat([target, -garbage], dim=1)
    target_pad[1, 4:] = 123.0  # padding inside the original length range too
    online_pad.data[1, 4:] = -77.0
    mask_pad = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], dim=1)
    pad_u = time_unrolled_loss(online_pad, target_pad, mask_pad)
    pad_m = time_merged_loss(online_pad, target_pad, mask_pad)
    assert pad_u.item() == pytest.approx(base_u.item(), rel=1e-5)
    assert pad_m.item() == pytest.approx(base_m.item(), rel=1e-5)
    (grad_pad,) = torch.autograd.grad(pad_u + pad_m, online_pad)
    assert torch.isfinite(grad_pad).all()
    assert (grad_pad[~mask_pad] == 0).all()
    torch.testing.assert_close(grad_pad[:, :7][mask], grad_clean[mask], rtol=1e-4, atol=1e-6)


def test_identity_and_collapse_values():
    online, _ = random_pair(4, 200, 3, seed=6)
    assert time_unrolled_loss(online, online).item() < 0.05
    assert time_merged_loss(online, online).item() < 0.05
    collapsed = online[:, :, :1].expand(-1, -1, 3)  # every feature identical
    assert time_unrolled_loss(collapsed, collapsed).item() == pytest.approx(2.0, rel=1e-3)
    same = online[:1].expand(4, -1, -1)  # every utterance identical
    assert time_merged_loss(same, same).item() == pytest.approx(2.0, rel=1e-3)
    c = unrolled_cross_correlation(online, online)
    assert c.shape == (3, 3) and c.dtype == torch.float32


def test_dynamic_combination_value_and_gradients():
    online, target = random_pair(3, 12, 5, seed=7)
    online.requires_grad_(True)
    mask = prefix_mask([12, 8, 10], 12)
    lu = time_unrolled_loss(online, target, mask)
    lm = time_merged_loss(online, target, mask)
    combined = combine_losses(lu, lm, "dynamic")
    assert combined.item() == pytest.approx(2.0)
    (grad,) = torch.autograd.grad(combined, online, retain_graph=True)
    (grad_u,) = torch.autograd.grad(lu, online, retain_graph=True)
    (grad_m,) = torch.autograd.grad(lm, online, retain_graph=True)
    expected = grad_u / lu.detach() + grad_m / lm.detach()
    torch.testing.assert_close(grad, expected)
    # scale invariance: each term's gradient is independent of its magnitude
    (scaled,) = torch.autograd.grad(combine_losses(100.0 * lu, 0.01 * lm), online)
    torch.testing.assert_close(scaled, grad, rtol=1e-4, atol=1e-7)


def test_static_combination():
    online, target = random_pair(3, 12, 5, seed=8)
    online.requires_grad_(True)
    lu = time_unrolled_loss(online, target)
    lm = time_merged_loss(online, target)
    combined = combine_losses(lu, lm, "static", w_unrolled=0.1, w_merged=0.5)
    assert combined.item() == pytest.approx(0.1 * lu.item() + 0.5 * lm.item())
    (grad,) = torch.autograd.grad(combined, online, retain_graph=True)
    (grad_u,) = torch.autograd.grad(lu, online, retain_graph=True)
    (grad_m,) = torch.autograd.grad(lm, online)
    torch.testing.assert_close(grad, 0.1 * grad_u + 0.5 * grad_m)
    with pytest.raises(ValueError, match="mode"):
        combine_losses(lu, lm, "average")


def test_module_and_errors():
    online, target = random_pair(2, 6, 3, seed=9)
    out = SequenceBarlowLoss(mode="static", w_unrolled=0.5, w_merged=1.0)(online, target)
    assert out["total"].item() == pytest.approx(0.5 * out["unrolled"].item() + out["merged"].item())
    with pytest.raises(ValueError, match="too small"):
        time_merged_loss(online[:1], target[:1])
    with pytest.raises(ValueError, match="at least 2 valid frames"):
        time_unrolled_loss(online, target, prefix_mask([1, 0], 6))
    with pytest.raises(ValueError, match=r"\[batch, time, feature\]"):
        time_unrolled_loss(online[0], target[0])


def test_fp32_under_autocast():
    online, target = random_pair(3, 8, 4, seed=10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lu = time_unrolled_loss(online.bfloat16(), target.bfloat16())
        lm = time_merged_loss(online.bfloat16(), target.bfloat16())
    assert lu.dtype == torch.float32 and lm.dtype == torch.float32


def test_noncontrastive_model_reports_the_projections_spread():
    """The collapse check in every log line: the mean over dimensions of the
    per-dimension std of each projection over the batch's frames; a
    projection that maps every frame to one vector reports 0."""
    from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel

    torch.manual_seed(0)
    model = NonContrastiveModel({"zoo": "w2v2_micro"}).eval()
    wav = torch.randn(2, 16000)
    torch.manual_seed(1)
    out = model(wav)
    torch.manual_seed(1)  # the same masks as the forward's online view
    online = model._view(model.online, model.online_projection, wav, None, *model.online_mask)[0]
    assert float(out["online_projection_std"]) == pytest.approx(
        float(online.detach().flatten(0, 1).std(0).mean()), rel=1e-5)
    assert float(out["target_projection_std"]) > 0
    for projection in (model.online_projection, model.target_projection):
        for p in projection.parameters():
            torch.nn.init.zeros_(p)  # every frame -> the zero vector
    out = model(wav)
    assert float(out["online_projection_std"]) == 0.0 == float(out["target_projection_std"])
