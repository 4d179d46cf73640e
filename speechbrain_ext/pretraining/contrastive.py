"""The wav2vec 2.0 contrastive objective, computed on masked frames only.

Masked frames of a batch are handled row-concatenated: utterance ``b`` owns
rows ``offset_b .. offset_b + M_b - 1`` of a ``[total_masked, dim]`` tensor
(``offset_b = M_0 + ... + M_{b-1}``), which is what
``tensor[frame_mask]`` gives for a ``[batch, time, dim]`` tensor and a
``[batch, time]`` bool mask.  The number of masked frames may differ between
utterances (no ``require_same_masks`` thinning).

Pipeline, following fairseq:

1. :func:`sample_negatives` -- for every masked frame, ``K`` distractor rows
   drawn uniformly (with replacement across the ``K`` draws) from the *other*
   masked frames of the same utterance.
2. :func:`contrastive_logits` -- cosine similarity (fp32) between the context
   vector and the positive target (column 0) and the ``K`` negatives, divided
   by a temperature; a negative equal to its positive gets ``-inf``.
3. :func:`wav2vec2_pretraining_loss` / :class:`Wav2Vec2Loss` -- summed cross
   entropy plus the codebook-diversity and feature-penalty terms, all scaled
   by the number of masked frames ``N``; the total is returned divided by
   ``N`` (gradients per masked frame, as fairseq's trainer does).
"""
import torch
from torch import nn


def sample_negatives(frames_per_utterance, num_negatives, generator=None, total=None):
    """Draws distractor rows for every masked frame from its own utterance.

    For the frame at local position ``i`` of utterance ``b`` (``M_b`` masked
    frames), each negative is ``offset_b + j`` with ``j`` uniform on the
    ``M_b - 1`` positions other than ``i`` (drawn on ``[0, M_b - 1)``, then
    shifted by one at and above ``i``).  Draws are independent, so the same
    distractor can appear more than once among the ``K`` (as in fairseq).

    Arguments
    ---------
    frames_per_utterance : torch.LongTensor
        ``[batch]`` number of masked frames ``M_b`` per utterance (0 allowed).
    num_negatives : int
        ``K``, distractors per masked frame (100 in wav2vec 2.0).
    generator : torch.Generator, optional
        Source of randomness, on the device of ``frames_per_utterance``.
    total : int, optional
        ``sum(M_b)`` when the caller knows it (e.g. from the masked-frame
        index): saves the host synchronisation of ``repeat_interleave``.

    Returns
    -------
    torch.LongTensor
        ``[total_masked, num_negatives]`` row indices into the
        row-concatenated masked frames.

    Raises
    ------
    ValueError
        If an utterance has exactly one masked frame (no possible negative).

    Example
    -------
    >>> g = torch.Generator().manual_seed(0)
    >>> index = sample_negatives(torch.tensor([3, 2]), 4, g)
    >>> index.shape
    torch.Size([5, 4])
    >>> index[3:].tolist()  # rows 3 and 4 (utterance 1) can only pick each other
    [[4, 4, 4, 4], [3, 3, 3, 3]]
    """
    counts = torch.as_tensor(frames_per_utterance).long()
    device = counts.device
    # one host synchronisation for both checks; the messages only on failure
    if bool(((counts == 1) | (counts < 0)).any()):
        lonely = (counts == 1).nonzero().flatten()
        if lonely.numel() > 0:
            raise ValueError(
                f"utterance(s) {lonely.tolist()} have a single masked frame: "
                "no negative can be sampled from the same utterance"
            )
        raise ValueError(f"negative masked-frame counts: {counts.tolist()}")
    utterance = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts,
                                        output_size=total)
    offsets = (counts.cumsum(0) - counts)[utterance]  # [total]
    total = utterance.numel()
    local = torch.arange(total, device=device) - offsets
    choices = (counts[utterance] - 1)[:, None]  # [total, 1], >= 1
    uniform = torch.rand(
        total, num_negatives, generator=generator, device=device, dtype=torch.float64
    )
    draw = torch.minimum((uniform * choices).long(), choices - 1)
    draw = draw + (draw >= local[:, None]).long()
    return draw + offsets[:, None]


def contrastive_logits(context, targets, negative_index, temperature=0.1):
    """Cosine-similarity logits of every masked frame against its candidates.

    Computed in fp32 with autocast disabled.

    Arguments
    ---------
    context : torch.Tensor
        ``[total_masked, dim]`` transformer outputs (after ``final_proj``).
    targets : torch.Tensor
        ``[total_masked, dim]`` quantized targets (after ``project_q``), row
        ``r`` being the positive of ``context[r]``.
    negative_index : torch.LongTensor
        ``[total_masked, num_negatives]`` rows of ``targets`` used as
        distractors (see :func:`sample_negatives`).
    temperature : float
        Logits are ``cosine / temperature`` (0.1 in wav2vec 2.0).

    Returns
    -------
    torch.Tensor
        ``[total_masked, 1 + num_negatives]`` fp32 logits, the positive in
        column 0; negatives whose target vector equals the positive in every
        element are ``-inf``.

    Example
    -------
    >>> context = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> targets = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    >>> logits = contrastive_logits(context, targets, torch.tensor([[1], [0], [0]]))
    >>> logits[:2]
    tensor([[10.,  0.],
            [10.,  0.]])
    >>> logits[2, 1].item()  # target 0 equals target 2: not a usable negative
    -inf
    """
    if context.shape != targets.shape or context.dim() != 2:
        raise ValueError(
            f"context and targets must both be [total_masked, dim], got "
            f"{tuple(context.shape)} and {tuple(targets.shape)}"
        )
    with torch.autocast(device_type=context.device.type, enabled=False):
        context = context.float()
        targets = targets.float()
        context_unit = torch.nn.functional.normalize(context, dim=-1, eps=1e-8)
        target_norm = targets.norm(dim=-1).clamp_min(1e-8)  # [M]
        positive = (context_unit * targets).sum(-1) / target_norm  # [M]
        dots = _negative_dots(context_unit, targets, negative_index)  # [M, K]
        negative = dots / target_norm[negative_index]
        logits = torch.cat([positive[:, None], negative], dim=1) / temperature
        duplicate = _equal_rows(targets, negative_index)  # [M, K]
        duplicate = torch.cat([torch.zeros_like(duplicate[:, :1]), duplicate], dim=1)
        return logits.masked_fill(duplicate, float("-inf"))


# The negatives' similarities are the hot spot of the objective: gathering the
# [M, K, dim] distractor vectors (and, in backward, scatter-adding their
# gradients back) costs several times the rest of the heads on a CPU.  Since
# every row's distractors lie in a short run of rows (its own utterance), the
# dot products are taken as one batched matrix product per run of rows and
# only the [M, K] scalars are gathered.  The results are the same dot
# products (up to the summation order of float arithmetic).

# Use the blocked product while its [segments, rows, columns] similarity
# tensor has at most this many entries per gathered logit.
_BLOCK_WASTE_LIMIT = 8


def _row_segments(negative_index):
    """Splits rows into runs whose distractors share a short column range.

    Row ``m`` needs columns ``lo_m .. hi_m`` (the span of ``m`` and its
    distractors).  A new segment starts at row ``m`` when ``lo_m`` lies after
    every earlier row's ``hi``: with distractors from the row's own utterance
    (contiguous rows) a segment never crosses utterances; for any other index
    the segments are simply larger.  Returns ``(segment of each row [M],
    first row [S], first column [S], rows per segment R, columns W)``.
    """
    total = negative_index.shape[0]
    rows = torch.arange(total, device=negative_index.device)
    lo = torch.minimum(negative_index.min(dim=1).values, rows)
    hi = torch.maximum(negative_index.max(dim=1).values, rows)
    starts = torch.ones(total, dtype=torch.bool, device=rows.device)
    starts[1:] = lo[1:] > torch.cummax(hi, dim=0).values[:-1]
    segment = starts.long().cumsum(0) - 1
    first_row = rows[starts]  # [S] (the one data-dependent shape: a host synchronisation)
    num_segments = first_row.shape[0]
    first_col = torch.full((num_segments,), total, dtype=torch.long, device=rows.device)
    first_col = first_col.scatter_reduce(0, segment, lo, reduce="amin")
    last_col = torch.zeros_like(first_col).scatter_reduce(0, segment, hi, reduce="amax")
    # both sizes in one device-to-host copy instead of two
    num_rows, num_cols = torch.stack([
        torch.bincount(segment, minlength=num_segments).max(),
        (last_col - first_col).max() + 1]).tolist()
    return segment, first_row, first_col, num_rows, num_cols


def _negative_dots(context, targets, negative_index):
    """``[M, K]`` dot products ``context[m] . targets[negative_index[m, k]]``."""
    total, num_negatives = negative_index.shape
    if total == 0 or num_negatives == 0:
        return context.new_zeros(total, num_negatives)
    segment, first_row, first_col, num_rows, num_cols = _row_segments(negative_index)
    num_segments = first_row.shape[0]
    if num_segments * num_rows * num_cols > _BLOCK_WASTE_LIMIT * total * num_negatives:
        # a few rows reach far: the plain gather is cheaper than the blocks
        return torch.einsum("md,mkd->mk", context, targets[negative_index])
    dim = context.shape[1]
    # [S, R] rows and [S, W] columns of each segment (clamped at the end:
    # the padding's products are computed but never read)
    row_index = (first_row[:, None] + torch.arange(num_rows, device=context.device))
    col_index = (first_col[:, None] + torch.arange(num_cols, device=context.device))
    row_block = context.index_select(0, row_index.clamp_max(total - 1).flatten())
    col_block = targets.index_select(0, col_index.clamp_max(total - 1).flatten())
    products = torch.bmm(row_block.view(num_segments, num_rows, dim),
                         col_block.view(num_segments, num_cols, dim).transpose(1, 2))
    rows = torch.arange(total, device=context.device)
    own = segment * num_rows + (rows - first_row[segment])  # row m in products
    products = products.reshape(num_segments * num_rows, num_cols).index_select(0, own)
    return products.gather(1, negative_index - first_col[segment][:, None])


_HASH_WEIGHTS = {}


def _hash_weights(dim, device):
    """Fixed pseudo-random integer weights (own generator: the global random
    stream is left alone), small enough that ``sum(int32 * weight)`` over
    ``dim`` terms cannot overflow int64."""
    key = (dim, str(device))
    if key not in _HASH_WEIGHTS:
        bits = max(1, 62 - 31 - max(dim - 1, 1).bit_length())
        generator = torch.Generator().manual_seed(20200611)
        weights = torch.randint(0, 2**bits, (dim,), generator=generator, dtype=torch.long)
        _HASH_WEIGHTS[key] = weights.to(device)
    return _HASH_WEIGHTS[key]


def _equal_rows(targets, negative_index):
    """``[M, K]`` bool: ``targets[negative_index[m, k]] == targets[m]`` in
    every element (float equality: ``-0.0 == 0.0``, NaN equals nothing).

    Equal rows have equal bit patterns once -0.0 is made +0.0, hence equal
    integer keys (exact integer arithmetic); only the pairs whose keys match
    (the duplicates, plus rare key collisions) are compared element-wise.
    """
    with torch.no_grad():
        canonical = torch.where(targets == 0, torch.zeros_like(targets), targets)
        bits = canonical.contiguous().view(torch.int32).long()
        key = (bits * _hash_weights(targets.shape[1], targets.device)).sum(dim=1)  # [M]
        same = key[negative_index] == key[:, None]  # [M, K]
        rows, cols = same.nonzero(as_tuple=True)
        if rows.numel() > 0:
            same[rows, cols] = (targets[negative_index[rows, cols]] == targets[rows]).all(dim=-1)
        return same


def wav2vec2_pretraining_loss(
    logits,
    prob_perplexity,
    num_codevectors,
    feature_penalty=None,
    diversity_weight=0.1,
    feature_penalty_weight=10.0,
):
    """fairseq's wav2vec 2.0 loss, returned per masked frame.

    With ``N`` masked frames, fairseq minimises the sum
    ``sum_r CE(logits_r, 0) + diversity_weight * N * (GV - prob_perplexity) / GV
    + feature_penalty_weight * N * feature_penalty`` and divides gradients by
    ``N``; ``total`` here is that sum divided by ``N``.

    Arguments
    ---------
    logits : torch.Tensor
        ``[total_masked, 1 + num_negatives]`` from :func:`contrastive_logits`.
    prob_perplexity : torch.Tensor
        Scalar softmax perplexity of the quantizer over the masked frames.
    num_codevectors : int
        ``G * V`` (640 for wav2vec 2.0).
    feature_penalty : torch.Tensor, optional
        Scalar mean squared CNN feature (``features.float().pow(2).mean()``);
        ``None`` (e.g. SEW) contributes zero.
    diversity_weight, feature_penalty_weight : float
        Weights (0.1 and 10 in wav2vec 2.0 base).

    Returns
    -------
    dict
        ``total``, ``contrastive`` (mean cross entropy), ``diversity`` and
        ``feature_penalty`` (weighted, so ``total`` is their sum), all
        per masked frame; ``accuracy`` (detached; a frame is correct when the
        positive is the argmax and not also the argmin, fairseq's rule, which
        rejects rows whose logits are all equal); ``num_masked`` (int).

    Example
    -------
    >>> logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    >>> out = wav2vec2_pretraining_loss(logits, torch.tensor(640.0), 640)
    >>> round(out["contrastive"].item(), 4), out["diversity"].item(), out["accuracy"].item()
    (5.0001, 0.0, 0.5)
    """
    num_masked = logits.shape[0]
    if num_masked == 0:
        raise ValueError("no masked frames: the contrastive loss is undefined")
    logits = logits.float()
    positive = torch.zeros(num_masked, dtype=torch.long, device=logits.device)
    contrastive_sum = torch.nn.functional.cross_entropy(logits, positive, reduction="sum")
    contrastive = contrastive_sum / num_masked
    diversity = diversity_weight * (num_codevectors - prob_perplexity) / num_codevectors
    if feature_penalty is None:
        penalty = torch.zeros((), device=logits.device)
    else:
        penalty = feature_penalty_weight * feature_penalty.float()
    with torch.no_grad():
        is_max = logits.argmax(dim=-1) == 0
        is_min = logits.argmin(dim=-1) == 0
        accuracy = (is_max & ~is_min).float().mean()
    return {
        "total": contrastive + diversity + penalty,
        "contrastive": contrastive,
        "diversity": diversity,
        "feature_penalty": penalty,
        "accuracy": accuracy,
        "num_masked": num_masked,
    }


class Wav2Vec2Loss(nn.Module):
    """Module form of :func:`wav2vec2_pretraining_loss` (weights from YAML).

    Arguments
    ---------
    diversity_weight : float
        Weight of ``(GV - prob_perplexity) / GV``.
    feature_penalty_weight : float
        Weight of the CNN feature L2 penalty.

    Example
    -------
    >>> loss = Wav2Vec2Loss(diversity_weight=0.1, feature_penalty_weight=10.0)
    >>> out = loss(torch.zeros(4, 101), torch.tensor(320.0), 640, torch.tensor(0.01))
    >>> round(out["total"].item(), 4)  # log(101) + 0.1 * 0.5 + 10 * 0.01
    4.7651
    """

    def __init__(self, diversity_weight=0.1, feature_penalty_weight=10.0):
        super().__init__()
        self.diversity_weight = diversity_weight
        self.feature_penalty_weight = feature_penalty_weight

    def forward(self, logits, prob_perplexity, num_codevectors, feature_penalty=None):
        """See :func:`wav2vec2_pretraining_loss`."""
        return wav2vec2_pretraining_loss(
            logits,
            prob_perplexity,
            num_codevectors,
            feature_penalty,
            self.diversity_weight,
            self.feature_penalty_weight,
        )
