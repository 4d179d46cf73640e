"""Tests of the fairseq-style span mask (speechbrain_ext.models.masking)."""
import numpy as np
import pytest
import torch

from speechbrain_ext.models.masking import compute_span_mask


def fairseq_reference_rate(length, mask_prob, mask_length, min_masks, trials, seed):
    """Mean masked fraction of fairseq's per-utterance algorithm, re-simulated
    independently with numpy (static lengths, overlap allowed, no thinning)."""
    rng = np.random.default_rng(seed)
    total = 0
    for _ in range(trials):
        num_mask = int(mask_prob * length / float(mask_length) + rng.random())
        num_mask = max(min_masks, num_mask)
        min_len = mask_length
        if length - min_len <= num_mask:
            min_len = length - num_mask - 1
        starts = rng.choice(length - min_len, num_mask, replace=False)
        idx = np.asarray([s + o for s in starts for o in range(mask_length)])
        idx = np.unique(idx[idx < length])
        total += len(idx)
    return total / (trials * length)


def run_lengths(row):
    """Lengths of the maximal runs of True in a 1-D bool tensor."""
    runs, current = [], 0
    for value in row.tolist():
        if value:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


@pytest.mark.parametrize(
    "length, trials, tol",
    [(250, 800, 0.01), (49, 3000, 0.015), (12, 3000, 0.02)],
)
def test_rate_matches_fairseq_simulation(length, trials, tol):
    g = torch.Generator().manual_seed(1)
    mask = compute_span_mask(torch.full((trials,), length), length, 0.65, 10, 2, g)
    expected = fairseq_reference_rate(length, 0.65, 10, 2, trials, seed=2)
    assert abs(mask.float().mean().item() - expected) < tol
    if length == 250:  # the well-known ~49 % at p=0.65, L=10
        assert 0.47 < expected < 0.51


def test_single_span_is_exactly_mask_length():
    g = torch.Generator().manual_seed(0)
    mask = compute_span_mask(torch.full((200,), 100), 100, 0.0, 10, 1, g)
    assert (mask.sum(1) == 10).all()
    for row in mask[:20]:
        assert run_lengths(row) == [10]


def test_runs_are_whole_spans():
    # starts lie in range(n - L), so spans are never truncated: every run of
    # masked frames is one span (exactly 10) or a union of overlapping spans
    g = torch.Generator().manual_seed(3)
    mask = compute_span_mask(torch.full((50,), 200), 200, 0.65, 10, 2, g)
    runs = [r for row in mask for r in run_lengths(row)]
    assert min(runs) >= 10
    assert 10 in runs
    assert not mask[:, 199].any()  # last start is n - L - 1


def test_never_inside_padding_and_ragged_counts():
    g = torch.Generator().manual_seed(4)
    lengths = torch.tensor([49, 10, 23, 120, 77, 49])
    mask = compute_span_mask(lengths, 130, 0.65, 10, 2, g)
    assert mask.shape == (6, 130)
    frames = torch.arange(130)
    assert not (mask & (frames >= lengths[:, None])).any()
    assert (mask.sum(1) >= 10).all()


def test_one_second_clips():
    g = torch.Generator().manual_seed(5)
    mask = compute_span_mask(torch.full((64,), 49), 49, 0.65, 10, 2, g)
    assert mask.shape == (64, 49)
    assert (mask.sum(1) >= 10).all()
    assert (mask.sum(1) < 49).all()


def test_min_masks():
    g = torch.Generator().manual_seed(6)
    none = compute_span_mask(torch.full((10,), 500), 500, 0.0, 10, 0, g)
    assert not none.any()
    three = compute_span_mask(torch.full((300,), 5000), 5000, 0.0, 10, 3, g)
    counts = three.sum(1).float()
    assert (counts >= 10).all() and (counts <= 30).all()
    assert counts.mean() > 29.5  # overlaps are rare in 5000 frames


def test_generator_determinism():
    lengths = torch.tensor([49, 80, 33])
    a = compute_span_mask(lengths, 80, 0.65, 10, 2, torch.Generator().manual_seed(7))
    b = compute_span_mask(lengths, 80, 0.65, 10, 2, torch.Generator().manual_seed(7))
    c = compute_span_mask(lengths, 80, 0.65, 10, 2, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_too_short_clip_raises():
    with pytest.raises(ValueError, match=r"\[7\].*mask_length=10"):
        compute_span_mask(torch.tensor([49, 7]), 49, 0.65, 10, 2)


def test_max_len_too_small_raises():
    with pytest.raises(ValueError, match="max_len"):
        compute_span_mask(torch.tensor([49, 60]), 50, 0.65, 10, 2)
