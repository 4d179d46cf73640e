"""Tests of the wav2vec 2.0 contrastive objective (speechbrain_ext.pretraining.contrastive)."""
import math

import numpy as np
import pytest
import torch

from speechbrain_ext.pretraining.contrastive import (Wav2Vec2Loss, contrastive_logits, sample_negatives,
                                                     wav2vec2_pretraining_loss)


def owner_and_start(counts):
    """Per row: (utterance, first row of that utterance), by a plain loop."""
    owner, start, row = [], [], 0
    for b, m in enumerate(counts):
        owner += [b] * m
        start += [row] * m
        row += m
    return owner, start


def test_negatives_same_utterance_never_positive():
    counts = [5, 0, 2, 17, 3, 40]
    g = torch.Generator().manual_seed(0)
    index = sample_negatives(torch.tensor(counts), 30, g)
    assert index.shape == (sum(counts), 30) and index.dtype == torch.long
    owner, start = owner_and_start(counts)
    for row in range(sum(counts)):
        for j in index[row].tolist():
            assert j != row
            assert owner[j] == owner[row]
            assert start[row] <= j < start[row] + counts[owner[row]]


def test_negatives_roughly_uniform():
    g = torch.Generator().manual_seed(1)
    index = sample_negatives(torch.tensor([3, 6]), 6000, g)
    # row 4 is local frame 1 of utterance 1 (rows 3..8): candidates 3, 5, 6, 7, 8
    hits = torch.bincount(index[4], minlength=9).float() / 6000
    assert hits[4] == 0 and hits[:3].sum() == 0
    for j in (3, 5, 6, 7, 8):
        assert abs(hits[j].item() - 0.2) < 0.025
    first = torch.bincount(index[0], minlength=3).float() / 6000
    assert first[0] == 0 and abs(first[1].item() - 0.5) < 0.03


def test_negatives_determinism_and_errors():
    a = sample_negatives(torch.tensor([4, 9]), 10, torch.Generator().manual_seed(2))
    b = sample_negatives(torch.tensor([4, 9]), 10, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"\[1\].*single masked frame"):
        sample_negatives(torch.tensor([4, 1, 3]), 10)
    assert sample_negatives(torch.tensor([0, 0]), 10).shape == (0, 10)


def test_logits_against_loop():
    torch.manual_seed(3)
    m, d, k = 12, 7, 5
    context, targets = torch.randn(m, d), torch.randn(m, d)
    index = sample_negatives(torch.tensor([4, 8]), k, torch.Generator().manual_seed(3))
    logits = contrastive_logits(context, targets, index, temperature=0.1)
    assert logits.shape == (m, 1 + k) and logits.dtype == torch.float32
    for r in range(m):
        c = context[r].double().numpy()
        candidates = [r] + index[r].tolist()
        for col, j in enumerate(candidates):
            t = targets[j].double().numpy()
            cosine = c @ t / (np.linalg.norm(c) * np.linalg.norm(t))
            assert logits[r, col].item() == pytest.approx(cosine / 0.1, abs=1e-5)


def test_duplicate_negatives_are_minus_inf():
    torch.manual_seed(4)
    context, targets = torch.randn(6, 4), torch.randn(6, 4)
    targets[2] = targets[0]  # utterance 0 = rows 0..2: row 2 duplicates row 0
    targets[4] = 3 * targets[3]  # parallel but not equal: stays finite
    index = torch.tensor([[2, 1], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]])
    logits = contrastive_logits(context, targets, index)
    inf = float("-inf")
    assert logits[0, 1] == inf and torch.isfinite(logits[0, 2])
    assert logits[2, 1] == inf and torch.isfinite(logits[2, 2])
    assert torch.isfinite(logits[1]).all()
    assert torch.isfinite(logits[3:]).all()
    assert torch.isfinite(logits[:, 0]).all()


def test_logits_fp32_under_autocast_and_grad():
    context = torch.randn(6, 4, requires_grad=True)
    targets = torch.randn(6, 4, requires_grad=True)
    index = sample_negatives(torch.tensor([6]), 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = contrastive_logits(context.bfloat16(), targets.bfloat16(), index)
    assert logits.dtype == torch.float32
    logits.sum().backward()
    assert context.grad.abs().sum() > 0 and targets.grad.abs().sum() > 0


def reference_loss(logits, ppl, gv, pen, w_div, w_pen):
    """Independent numpy version of fairseq's summed loss, divided by N."""
    x = logits.double().numpy()
    n = x.shape[0]
    ce = 0.0
    for row in x:
        finite = row[np.isfinite(row)]
        top = finite.max()
        ce += -(row[0] - top - math.log(np.exp(finite - top).sum()))
    total = ce + w_div * n * (gv - ppl) / gv + w_pen * n * pen
    return total / n, ce / n


def test_loss_against_independent_formula():
    torch.manual_seed(5)
    logits = torch.randn(9, 11) * 3
    logits[2, 4] = float("-inf")
    out = wav2vec2_pretraining_loss(
        logits, torch.tensor(400.0), 640, torch.tensor(0.3),
        diversity_weight=0.1, feature_penalty_weight=10.0,
    )
    total, ce = reference_loss(logits, 400.0, 640, 0.3, 0.1, 10.0)
    assert out["total"].item() == pytest.approx(total, rel=1e-5)
    assert out["contrastive"].item() == pytest.approx(ce, rel=1e-5)
    assert out["diversity"].item() == pytest.approx(0.1 * 240 / 640)
    assert out["feature_penalty"].item() == pytest.approx(3.0)
    assert out["num_masked"] == 9
    parts = out["contrastive"] + out["diversity"] + out["feature_penalty"]
    assert out["total"].item() == pytest.approx(parts.item())
    module = Wav2Vec2Loss(0.1, 10.0)(logits, torch.tensor(400.0), 640, torch.tensor(0.3))
    assert module["total"].item() == pytest.approx(total, rel=1e-5)


def test_diversity_term_perfect_and_collapsed():
    logits = torch.zeros(3, 5)
    perfect = wav2vec2_pretraining_loss(logits, torch.tensor(640.0), 640)
    collapsed = wav2vec2_pretraining_loss(logits, torch.tensor(2.0), 640)  # one code per group
    assert perfect["diversity"].item() == 0.0
    assert collapsed["diversity"].item() == pytest.approx(0.1 * 638 / 640)
    assert perfect["feature_penalty"].item() == 0.0  # no penalty given (SEW)


def test_gradient_is_per_masked_frame():
    # total = mean CE, so duplicating the batch leaves gradients unchanged
    base = torch.randn(4, 6)
    grads = []
    for rep in (1, 3):
        logits = base.repeat(rep, 1).requires_grad_()
        ppl = torch.tensor(100.0, requires_grad=True)
        out = wav2vec2_pretraining_loss(logits, ppl, 640)
        out["total"].backward()
        grads.append(logits.grad[:4] * rep)
        assert ppl.grad.item() == pytest.approx(-0.1 / 640)
    torch.testing.assert_close(grads[0], grads[1])


def test_accuracy_fairseq_rule():
    logits = torch.tensor(
        [
            [5.0, 1.0, 2.0],  # correct
            [1.0, 5.0, 2.0],  # wrong
            [2.0, 2.0, 2.0],  # all equal: argmax and argmin are both 0 -> wrong
            [3.0, float("-inf"), float("-inf")],  # collapsed negatives: counted correct
        ]
    )
    out = wav2vec2_pretraining_loss(logits, torch.tensor(1.0), 640)
    assert out["accuracy"].item() == pytest.approx(0.5)
    assert not out["accuracy"].requires_grad
