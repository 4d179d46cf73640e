"""Span masking of latent frames (and of feature channels) for masked
prediction pre-training and fine-tuning.

:func:`compute_span_mask` draws the time mask of wav2vec 2.0 with the semantics
of fairseq's ``compute_mask_indices`` (static span lengths, overlapping spans
allowed), computed per utterance on its *unpadded* length and fully vectorised
over the batch. :func:`compute_channel_mask` draws fine-tuning's channel
mask (fairseq ``mask_channel_prob``) with the same rule along the feature
axis.

Per utterance of ``n`` valid frames (``p = mask_prob``, ``L = mask_length``):

1. ``num_mask = max(min_masks, floor(p * n / L + u))`` with ``u ~ U[0, 1)``;
   the expected number of span starts is therefore ``p * n / L`` exactly.
2. Span starts are a uniform random subset (drawn without replacement) of
   ``range(n - L)``.  When that range is too small (``n - L <= num_mask``)
   fairseq keeps ``num_mask`` and widens the range to ``range(num_mask + 1)``;
   the same rule is used here.
3. Every start ``s`` masks frames ``s .. s + L - 1``; spans may overlap, and
   frames at or beyond ``n`` are dropped, so padding is never masked.

Because spans overlap, about 49 % of the frames are masked at ``p = 0.65``,
``L = 10`` (not 65 %).  Differences from fairseq, on purpose:

* no ``require_same_masks`` thinning (which would fragment spans to give every
  row the batch-minimum count): the number of masked frames is ragged;
* ``num_mask == 0`` (possible only with ``min_masks=0`` and short clips) masks
  nothing, where fairseq raises; utterances shorter than ``L`` raise here.
* fairseq raises when a (very short) utterance ends up entirely masked; this
  function does not (it can only happen when ``n`` is close to ``L``).

The random stream differs from numpy's, so masks match fairseq in
distribution, not draw for draw.
"""
import torch


def compute_span_mask(
    lengths, max_len, mask_prob, mask_length, min_masks=0, generator=None
):
    """Draws a span mask per utterance; ``True`` marks a masked frame.

    Arguments
    ---------
    lengths : torch.LongTensor
        ``[batch]`` unpadded lengths in frames (absolute, not relative).
    max_len : int
        Padded length ``time`` of the returned mask (``>= lengths.max()``).
    mask_prob : float
        Probability that a frame starts a span, before overlaps
        (fairseq ``mask_prob``, 0.65 for wav2vec 2.0).
    mask_length : int
        Span length in frames (10 for wav2vec 2.0).
    min_masks : int
        Minimum number of spans per utterance (fairseq uses 2 in pre-training).
    generator : torch.Generator, optional
        Source of randomness (on the device of ``lengths``) for reproducibility.

    Returns
    -------
    torch.BoolTensor
        ``[batch, max_len]`` mask, always ``False`` at ``t >= lengths[b]``.

    Raises
    ------
    ValueError
        If an utterance is shorter than ``mask_length`` frames, or
        ``max_len`` is smaller than the longest length.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> mask = compute_span_mask(torch.tensor([49, 30]), 49, 0.65, 10, 2, g)
    >>> mask.shape
    torch.Size([2, 49])
    >>> bool(mask[1, 30:].any())
    False
    >>> int(mask[1].sum()) >= 10
    True
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D [batch], got shape {tuple(lengths.shape)}")
    lengths = lengths.long()
    device = lengths.device
    batch = lengths.shape[0]
    if batch == 0:
        return torch.zeros(0, max_len, dtype=torch.bool, device=device)
    if mask_length < 1:
        raise ValueError(f"mask_length must be >= 1, got {mask_length}")
    too_short = lengths < mask_length
    if bool(too_short.any()):
        raise ValueError(
            f"utterance(s) shorter than the mask span: lengths "
            f"{lengths[too_short].tolist()} (frames) < mask_length={mask_length}"
        )
    if int(lengths.max()) > max_len:
        raise ValueError(
            f"max_len={max_len} is smaller than the longest length {int(lengths.max())}"
        )

    # 1. number of spans per utterance (float64 like fairseq's python floats)
    uniform = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
    expected = mask_prob * lengths.double() / float(mask_length)
    num_mask = torch.floor(expected + uniform).long().clamp_min(min_masks)

    # 2. size of the range the starts are drawn from (fairseq's widening rule)
    start_range = lengths - mask_length
    start_range = torch.where(start_range <= num_mask, num_mask + 1, start_range)

    # uniform subsets without replacement: the num_mask best of iid scores,
    # with scores outside the row's range forced below every valid one
    range_width = int(start_range.max())
    scores = torch.rand(batch, range_width, generator=generator, device=device)
    columns = torch.arange(range_width, device=device)
    scores = scores.masked_fill(columns >= start_range[:, None], -1.0)
    max_spans = int(num_mask.max())
    width = max(range_width, max_len) + mask_length
    starts_indicator = torch.zeros(batch, width, device=device, dtype=torch.int32)
    if max_spans > 0:
        starts = scores.topk(max_spans, dim=1).indices  # [batch, max_spans]
        keep = torch.arange(max_spans, device=device) < num_mask[:, None]
        starts_indicator.scatter_add_(1, starts, keep.to(torch.int32))

    # 3. frame t is masked iff a start lies in (t - L, t]
    started = starts_indicator.cumsum(dim=1)
    before = torch.nn.functional.pad(started, (mask_length, 0))[:, :width]
    covered = (started - before) > 0
    frames = torch.arange(max_len, device=device)
    return covered[:, :max_len] & (frames < lengths[:, None])


def compute_channel_mask(
    batch, channels, mask_prob, mask_length, min_masks=0, generator=None, device=None
):
    """Draws a channel (feature-dimension) mask per utterance; ``True``
    marks a channel that is zeroed at every frame of that utterance.

    fairseq's ``mask_channel_prob`` / ``mask_channel_length`` (wav2vec2
    fine-tuning, HF's ``mask_feature_prob`` / ``mask_feature_length``): the
    span masking of :func:`compute_span_mask` along the ``channels`` axis
    of the projected CNN features, every row of full length (channels have
    no padding). Per utterance ``num_mask = max(min_masks, floor(p * C / L
    + u))`` spans of ``L`` channels start at a uniform subset of ``range(C -
    L)``; spans may overlap. At fairseq's fine-tuning values (``p = 0.5``,
    ``L = 64``, ``C = 768``) that is 6 spans, about 43 % of the channels.

    Differences from fairseq, on purpose (as for the time mask): no
    ``require_same_masks`` thinning to the batch minimum, and ``u`` is drawn
    per utterance where fairseq draws one for the whole batch (the same
    count whenever ``p * C / L`` is an integer, as at 768 and 512 channels
    with fairseq's values).

    Arguments
    ---------
    batch : int
        Utterances.
    channels : int
        Width ``C`` of the masked features.
    mask_prob, mask_length, min_masks : float, int, int
        As :func:`compute_span_mask`, along channels (fairseq uses
        ``min_masks=0`` for channels).
    generator : torch.Generator, optional
        Source of randomness; None: torch's global generator (of ``device``).
    device : torch.device, optional
        Where the mask is drawn and returned.

    Returns
    -------
    torch.BoolTensor
        ``[batch, channels]``.

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> mask = compute_channel_mask(3, 768, 0.5, 64, generator=g)
    >>> mask.shape, 64 * 1 <= int(mask[0].sum()) <= 64 * 6
    (torch.Size([3, 768]), True)
    """
    if mask_length > channels:
        raise ValueError(f"channel mask span {mask_length} is longer than the {channels} "
                         "channels of the features it masks")
    lengths = torch.full((int(batch),), int(channels), dtype=torch.long, device=device)
    return compute_span_mask(lengths, int(channels), mask_prob, mask_length, min_masks, generator)
