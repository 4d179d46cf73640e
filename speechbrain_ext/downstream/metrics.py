"""Downstream metrics shared by the tasks: error rates of text outputs
(WER / CER / PER, on SpeechBrain's ``ErrorRateStats``), equal error rate
over verification trials (SpeechBrain's ``EER``), cosine scoring of
embeddings, and the averaging of per-fold results (IEMOCAP's 5 folds).

Example
-------
>>> error_rates(["THE CAT SAT DOWN"], ["THE CAT SET DOWN"])   # 1 of 4 words, 1 of 16 characters
{'WER': 25.0, 'CER': 6.25}
>>> eer = equal_error_rate(torch.tensor([0.9, 0.8, 0.3]), torch.tensor([1, 1, 0]))
>>> eer
0.0
>>> average_folds({1: 60.0, 2: 70.0})
65.0
"""
import math

import torch
from speechbrain.utils.metric_stats import EER, ErrorRateStats

from speechbrain_ext.downstream.vocabulary import SLOT_TAG_SPLIT


def scoring_units(text, vocab, unit):
    """What an error rate counts: ``"word"`` (blank-separated words, WER;
    a slot tag is a word of its own) or ``"token"`` (the units of ``vocab``,
    a ``CTCVocabulary``: characters for CER, phonemes for PER; for SF every
    slot tag counts as one character).

    >>> from speechbrain_ext.downstream.vocabulary import LetterVocabulary
    >>> scoring_units("A BC", LetterVocabulary(), "word")
    ['A', 'BC']
    >>> scoring_units("A BC", LetterVocabulary(), "token")
    ['A', ' ', 'B', 'C']
    """
    if unit == "word":
        return SLOT_TAG_SPLIT.sub(r" \1 ", text).split()
    if unit == "token":
        return vocab.units(text)
    raise ValueError(f"error-rate unit must be 'word' or 'token', got {unit!r}")


def error_rates(references, hypotheses):
    """``{"WER", "CER"}`` in percent of texts: edits over reference words /
    characters (spaces included in CER, as in fairseq's letter error rate);
    NaN where the references hold no word / character."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    rates = {}
    for name, units in (("WER", str.split), ("CER", list)):
        refs = [units(r) for r in references]
        stats = ErrorRateStats()
        stats.append(list(range(len(refs))), [units(h) for h in hypotheses], refs)
        # ErrorRateStats says 0 for nothing to score, SpeechBrain's accumulatable_wer_stats NaN
        rates[name] = float(stats.summarize("error_rate")) if any(refs) else math.nan
    return rates


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
