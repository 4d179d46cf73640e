"""Downstream metrics shared by the tasks: equal error rate over
verification trials (SpeechBrain's ``EER``), cosine scoring of embeddings,
and the averaging of per-fold results (IEMOCAP's 5 folds).

Example
-------
>>> eer = equal_error_rate(torch.tensor([0.9, 0.8, 0.3]), torch.tensor([1, 1, 0]))
>>> eer
0.0
>>> average_folds({1: 60.0, 2: 70.0})
65.0
"""
import math

import torch
from speechbrain.utils.metric_stats import EER


def equal_error_rate(scores, labels):
    """EER (a fraction) of trial ``scores`` ``[N]`` with binary ``labels``
    ``[N]`` (1 = same speaker), through ``speechbrain.utils.metric_stats.EER``."""
    scores = torch.as_tensor(scores, dtype=torch.float32).flatten()
    labels = torch.as_tensor(labels).flatten().bool()
    if scores.numel() != labels.numel():
        raise ValueError(f"{scores.numel()} scores for {labels.numel()} labels")
    if labels.all() or not labels.any():
        raise ValueError("the EER needs both target (label 1) and non-target (label 0) trials")
    eer, _ = EER(scores[labels], scores[~labels])
    return float(eer)


def cosine_scores(enrol, test):
    """Cosine similarity of L2-normalised embedding pairs: ``enrol``, ``test``
    ``[N, D]`` -> ``[N]``.

    >>> cosine_scores(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[2.0, 0.0], [-1.0, -1.0]])).round()
    tensor([ 1., -1.])
    """
    return torch.nn.functional.cosine_similarity(enrol, test, dim=-1)


def average_folds(values):
    """Mean of per-fold values (``{fold: value}`` or a sequence); every fold
    must be present and finite."""
    values = list(values.values()) if isinstance(values, dict) else list(values)
    if not values:
        raise ValueError("no fold results to average")
    bad = [v for v in values if v is None or not math.isfinite(float(v))]
    if bad:
        raise ValueError(f"fold results must be finite numbers, got {values}")
    return sum(float(v) for v in values) / len(values)
