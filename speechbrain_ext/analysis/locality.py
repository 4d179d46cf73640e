"""How local a frame sequence is: whether a frame says anything about its
neighbours. A masked-prediction objective can only learn where its targets
are predictable from the visible context; when the features that the
targets are quantized from carry no temporal structure beyond one frame,
a span mask of 10 frames leaves nothing to predict and the contrastive
loss can only sit at ln(K + 1) (benchmarks/contrastive_collapse.py).

Two measures, per lag ``d`` in frames:

- ``lagged_cosine``: the mean cosine between frame ``t`` and frame
  ``t + d`` after removing each utterance's mean frame (so that a constant
  channel or speaker offset does not count as structure);
- ``code_agreement``: how often the code of frame ``t`` equals the code of
  frame ``t + d``, beside its chance level ``code_agreement_chance``: the
  agreement of two distinct frames drawn at random from the same utterance
  (what a lag far beyond any structure gives).
"""
import torch
import torch.nn.functional as F


def _valid_pairs(lengths, frames, lag, device):
    """``[batch, frames - lag]`` bool: both frames of the pair are inside the utterance."""
    index = torch.arange(frames - lag, device=device)
    return (index[None, :] + lag) < lengths[:, None]


def _mean_per_lag(lags, frames, lengths, pair_values):
    """``{lag: mean of pair_values(lag)}`` over the pairs inside an utterance;
    ``pair_values(lag)`` is ``[batch, frames - lag(, ...)]``, pair ``t`` being
    frames ``t`` and ``t + lag``."""
    result = {}
    for lag in lags:
        if not 0 < lag < frames:
            raise ValueError(f"lag {lag} must be in 1..{frames - 1} for {frames} frames")
        valid = _valid_pairs(lengths, frames, lag, lengths.device)
        result[lag] = float(pair_values(lag)[valid].mean()) if valid.any() else float("nan")
    return result


def _lengths(x, lengths):
    if lengths is None:
        return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths, device=x.device).long()
    if lengths.shape != (x.shape[0],) or (lengths < 1).any() or (lengths > x.shape[1]).any():
        raise ValueError(f"lengths must be {x.shape[0]} frame counts in 1..{x.shape[1]}, got {lengths.tolist()}")
    return lengths


@torch.no_grad()
def lagged_cosine(features, lags, lengths=None):
    """Mean cosine between frames ``lag`` apart, utterance means removed.

    Arguments
    ---------
    features : torch.Tensor
        ``[batch, frames, feature]``.
    lags : iterable of int
        Positive lags in frames.
    lengths : torch.Tensor, optional
        ``[batch]`` valid frames per utterance (default: all).

    Returns
    -------
    dict
        ``{lag: mean cosine}`` over the frame pairs inside an utterance.

    Example
    -------
    >>> t = torch.arange(40.0)
    >>> smooth = torch.stack([torch.sin(t / 6), torch.cos(t / 6)], -1)[None]  # [1, 40, 2]
    >>> round(lagged_cosine(smooth, [1])[1], 2)
    0.99
    """
    features = features.float()
    lengths = _lengths(features, lengths)
    frames = features.shape[1]
    inside = (torch.arange(frames, device=features.device)[None, :] < lengths[:, None]).float()
    mean = (features * inside[..., None]).sum(1, keepdim=True) / lengths[:, None, None]
    unit = F.normalize(features - mean, dim=-1)
    return _mean_per_lag(lags, frames, lengths,
                         lambda lag: (unit[:, lag:] * unit[:, :-lag]).sum(-1))


@torch.no_grad()
def code_agreement(codes, lags, lengths=None):
    """How often frames ``lag`` apart get the same code, and its chance level.

    Arguments
    ---------
    codes : torch.Tensor
        ``[batch, frames]`` or ``[batch, frames, groups]`` integer codes
        (one per codebook group).
    lags : iterable of int
        Positive lags in frames.
    lengths : torch.Tensor, optional
        ``[batch]`` valid frames per utterance (default: all).

    Returns
    -------
    agreement : dict
        ``{lag: fraction of (pair, group) with equal codes}``.
    chance : float
        The same fraction for two distinct frames of one utterance drawn at
        random: per utterance and group, ``sum_k n_k (n_k - 1) / (T (T - 1))``
        over the counts ``n_k`` of each code, averaged with weight ``T (T - 1)``.

    Example
    -------
    >>> codes = torch.tensor([[0, 0, 1, 1, 2, 2]])
    >>> agreement, chance = code_agreement(codes, [1, 2])
    >>> round(agreement[1], 3), agreement[2], round(chance, 3)
    (0.6, 0.0, 0.2)
    """
    if codes.dim() == 2:
        codes = codes[..., None]
    if codes.dim() != 3 or codes.dtype.is_floating_point:
        raise ValueError(f"codes must be integer [batch, frames(, groups)], got {tuple(codes.shape)} {codes.dtype}")
    lengths = _lengths(codes, lengths)
    frames = codes.shape[1]
    agreement = _mean_per_lag(lags, frames, lengths,
                              lambda lag: (codes[:, lag:] == codes[:, :-lag]).float())
    equal_pairs = total_pairs = 0
    for b, length in enumerate(lengths.tolist()):
        for g in range(codes.shape[2]):
            counts = torch.unique(codes[b, :length, g], return_counts=True)[1].double()
            equal_pairs += float((counts * (counts - 1)).sum())
            total_pairs += length * (length - 1)
    chance = equal_pairs / total_pairs if total_pairs else float("nan")
    return agreement, chance
