"""Non-contrastive Barlow-Twins losses for sequences (time unrolling and time
merging), as defined in paper 000 ("non-contrastive SSL for speech").

The online network output ``Z^A`` and the target (EMA) network output ``Z^B``
are ``[batch, time, feature]`` tensors.  Two views of them give two
cross-correlation matrices, each pushed towards the identity by

    ``L(C) = sum_i (1 - C_ii)^2 / N + sum_{i != j} 2 C_ij^2 / (N (N - 1))``

with ``N`` the side of the square matrix ``C`` (paper 000, section 2.2; unlike
the original Barlow Twins there is no ``lambda``, both parts are averages).
``C`` is the cross-correlation of batch-standardised embeddings, as in Barlow
Twins: each column is standardised like ``BatchNorm1d(affine=False)`` in train
mode (batch mean, biased variance, ``eps`` inside the square root), then
``C = bn(Z^A)^T bn(Z^B) / rows``.

* Time unrolling: ``[B, T, F] -> [B * T, F]``, ``C_U`` is ``F x F``
  (diversity between features, across all frames).  Padding frames are
  dropped before the statistics: only the ``n`` valid frames form the
  ``[n, F]`` matrix.
* Time merging: ``[B, T, F] -> [T * F, B]``, ``C_M`` is ``B x B`` (diversity
  between utterances).  Padding: utterances have different valid lengths, so
  the ``T * F`` rows of two columns are only comparable on the time steps
  *both* utterances have.  Entry ``C_M[i, j]`` is the paper's statistic
  computed on exactly those rows: the mean, biased variance and cross
  product of online column ``i`` and target column ``j`` are taken over the
  ``F * |valid_i & valid_j|`` entries at time steps valid in both utterances
  (for the usual prefix masks: the first ``min(len_i, len_j)`` frames); the
  diagonal therefore uses every valid frame of utterance ``i``.  Padding
  values never enter any statistic (they may even be NaN), and without padding
  this is exactly ``BatchNorm`` over the ``T * F`` rows followed by
  ``C = bn(Z^A)^T bn(Z^B) / (T * F)``.  It costs two ``[B, T*F] x [T*F, B]``
  sized matrix products.

:func:`combine_losses` mixes the two statically (``w_U L_U + w_M L_M``) or
dynamically (``L_U / sg(L_U) + L_M / sg(L_M)``, whose value is always 2 and
whose gradient is ``grad L_U / L_U + grad L_M / L_M``).

The losses do not detach the target themselves: run the target network under
``torch.no_grad()`` (see :mod:`speechbrain_ext.pretraining.ema`).  Everything is computed
in fp32 with autocast disabled.
"""
import torch
from torch import nn

BATCHNORM_EPS = 1e-5


def barlow_matrix_loss(correlation):
    """Paper 000's loss on a square cross-correlation matrix.

    Arguments
    ---------
    correlation : torch.Tensor
        ``[N, N]`` matrix ``C``.

    Returns
    -------
    torch.Tensor
        Scalar ``sum_i (1 - C_ii)^2 / N + sum_{i != j} 2 C_ij^2 / (N (N - 1))``
        (the second part is zero when ``N == 1``).

    Example
    -------
    >>> barlow_matrix_loss(torch.eye(4)).item()
    0.0
    >>> barlow_matrix_loss(torch.ones(4, 4)).item()  # fully correlated
    2.0
    """
    size = correlation.shape[0]
    if correlation.dim() != 2 or correlation.shape[1] != size:
        raise ValueError(f"expected a square matrix, got {tuple(correlation.shape)}")
    diagonal = correlation.diagonal()
    on_diagonal = (1.0 - diagonal).pow(2).sum() / size
    if size < 2:
        return on_diagonal
    off = correlation.pow(2).masked_fill(
        torch.eye(size, dtype=torch.bool, device=correlation.device), 0.0
    )
    return on_diagonal + 2.0 * off.sum() / (size * (size - 1))


def _check_inputs(online, target, frame_mask):
    if online.dim() != 3 or online.shape != target.shape:
        raise ValueError(
            "online and target must both be [batch, time, feature], got "
            f"{tuple(online.shape)} and {tuple(target.shape)}"
        )
    if frame_mask is None:
        return torch.ones(online.shape[:2], dtype=torch.bool, device=online.device)
    if frame_mask.shape != online.shape[:2]:
        raise ValueError(
            f"frame_mask must be [batch, time] = {tuple(online.shape[:2])}, "
            f"got {tuple(frame_mask.shape)}"
        )
    return frame_mask.bool()


def unrolled_cross_correlation(online, target, frame_mask=None, eps=BATCHNORM_EPS):
    """``F x F`` cross-correlation ``C_U`` of the valid frames.

    Arguments
    ---------
    online, target : torch.Tensor
        ``[batch, time, feature]`` outputs of the online and target networks.
    frame_mask : torch.BoolTensor, optional
        ``[batch, time]``, ``True`` for valid (non-padding) frames; ``None``
        means every frame is valid.
    eps : float
        Added to the variance, as in ``BatchNorm1d``.

    Returns
    -------
    torch.Tensor
        ``[feature, feature]`` fp32 matrix.

    Example
    -------
    >>> z = torch.randn(2, 50, 3)
    >>> c = unrolled_cross_correlation(z, z)
    >>> torch.allclose(c.diagonal(), torch.ones(3), atol=1e-3)
    True
    """
    frame_mask = _check_inputs(online, target, frame_mask)
    with torch.autocast(device_type=online.device.type, enabled=False):
        rows_a = online.float()[frame_mask]  # [n, F]
        rows_b = target.float()[frame_mask]
        num_rows = rows_a.shape[0]
        if num_rows < 2:
            raise ValueError(
                f"the time-unrolling Barlow loss needs at least 2 valid frames, got {num_rows}"
            )

        def standardise(rows):
            mean = rows.mean(dim=0)
            variance = rows.var(dim=0, unbiased=False)
            return (rows - mean) / torch.sqrt(variance + eps)

        return standardise(rows_a).T @ standardise(rows_b) / num_rows


def merged_cross_correlation(online, target, frame_mask=None, eps=BATCHNORM_EPS):
    """``B x B`` cross-correlation ``C_M`` of whole utterances.

    Entry ``[i, j]`` correlates online utterance ``i`` with target utterance
    ``j`` over the time steps valid in both (all features of those frames),
    with the statistics of the paper's batch standardisation restricted to
    those entries (see the module docstring).

    Arguments
    ---------
    online, target : torch.Tensor
        ``[batch, time, feature]``.
    frame_mask : torch.BoolTensor, optional
        ``[batch, time]``, ``True`` for valid frames (``None``: all valid).
    eps : float
        Added to the variances, as in ``BatchNorm1d``.

    Returns
    -------
    torch.Tensor
        ``[batch, batch]`` fp32 matrix.

    Example
    -------
    >>> z = torch.randn(3, 40, 8)
    >>> mask = torch.arange(40) < torch.tensor([40, 25, 31])[:, None]
    >>> c = merged_cross_correlation(z, z, mask)
    >>> c.shape, torch.allclose(c.diagonal(), torch.ones(3), atol=1e-3)
    (torch.Size([3, 3]), True)
    """
    frame_mask = _check_inputs(online, target, frame_mask)
    batch, _, features = online.shape
    if batch < 2:
        raise ValueError(
            f"batch of {batch} utterance(s) is too small for the Barlow "
            "time-merging loss (its cross-correlation is batch x batch; need >= 2)"
        )
    with torch.autocast(device_type=online.device.type, enabled=False):
        valid = frame_mask[:, :, None]
        steps = frame_mask.float()  # [B, T]
        frames_per_utterance = steps.sum(dim=1)
        if bool((frames_per_utterance == 0).any()):
            raise ValueError("an utterance has no valid frame (time-merging Barlow loss)")
        shared_steps = steps @ steps.T  # [B, B]
        if bool((shared_steps == 0).any()):
            raise ValueError("two utterances share no valid time step (time-merging Barlow loss)")
        count = shared_steps * features

        def centred(x):
            # subtracting a per-utterance constant leaves every entry of C
            # unchanged (it is shift invariant); it only helps precision
            x = torch.where(valid, x.float(), 0.0)
            shift = x.sum(dim=(1, 2)).detach() / (frames_per_utterance * features)
            return torch.where(valid, x - shift[:, None, None], 0.0)

        a = centred(online)
        b = centred(target)
        sum_a = a.sum(dim=2) @ steps.T  # [i, j]: sum of a_i over steps valid in i and j
        sum_b = steps @ b.sum(dim=2).T  # [i, j]: sum of b_j over the same steps
        square_a = a.pow(2).sum(dim=2) @ steps.T
        square_b = steps @ b.pow(2).sum(dim=2).T
        cross = a.reshape(batch, -1) @ b.reshape(batch, -1).T
        mean_a, mean_b = sum_a / count, sum_b / count
        variance_a = (square_a / count - mean_a.pow(2)).clamp_min(0.0)
        variance_b = (square_b / count - mean_b.pow(2)).clamp_min(0.0)
        covariance = cross / count - mean_a * mean_b
        return covariance / torch.sqrt((variance_a + eps) * (variance_b + eps))


def time_unrolled_loss(online, target, frame_mask=None, eps=BATCHNORM_EPS):
    """``L_U``: paper 000's loss on ``C_U`` (valid frames stacked, ``F x F``).

    Arguments
    ---------
    online, target : torch.Tensor
        ``[batch, time, feature]``.
    frame_mask : torch.BoolTensor, optional
        ``[batch, time]``, ``True`` for valid frames.
    eps : float
        BatchNorm epsilon.

    Returns
    -------
    torch.Tensor
        Scalar fp32 loss.

    Example
    -------
    >>> z = torch.randn(4, 100, 5, generator=torch.Generator().manual_seed(0))
    >>> time_unrolled_loss(z, z).item() < 0.1  # nearly decorrelated features
    True
    """
    return barlow_matrix_loss(unrolled_cross_correlation(online, target, frame_mask, eps))


def time_merged_loss(online, target, frame_mask=None, eps=BATCHNORM_EPS):
    """``L_M``: paper 000's loss on ``C_M`` (utterances as columns, ``B x B``).

    Arguments
    ---------
    online, target : torch.Tensor
        ``[batch, time, feature]``, ``batch >= 2``.
    frame_mask : torch.BoolTensor, optional
        ``[batch, time]``, ``True`` for valid frames; how padding is excluded
        is described in :func:`merged_cross_correlation`.
    eps : float
        BatchNorm epsilon.

    Returns
    -------
    torch.Tensor
        Scalar fp32 loss.

    Example
    -------
    >>> z = torch.randn(4, 100, 5, generator=torch.Generator().manual_seed(0))
    >>> time_merged_loss(z, z).item() < 0.1  # C_M close to the identity
    True
    >>> time_merged_loss(z, z.flip(0)).item() > 1.5  # swapped pairs: C_M near a permutation (5/3)
    True
    """
    return barlow_matrix_loss(merged_cross_correlation(online, target, frame_mask, eps))


def combine_losses(unrolled, merged, mode="dynamic", w_unrolled=1.0, w_merged=1.0):
    """Combines ``L_U`` and ``L_M`` (paper 000).

    * ``"static"``: ``w_unrolled * L_U + w_merged * L_M``.
    * ``"dynamic"``: ``L_U / sg(L_U) + L_M / sg(L_M)`` (``sg`` = stop
      gradient). Its value is 2 and its gradient is
      ``grad(L_U) / L_U + grad(L_M) / L_M``: each loss contributes a gradient
      independent of its scale.  The weights are ignored.  A term that is
      exactly zero gives NaN, as the formula does.

    Arguments
    ---------
    unrolled, merged : torch.Tensor
        Scalar losses ``L_U`` and ``L_M``.
    mode : str
        ``"dynamic"`` or ``"static"``.
    w_unrolled, w_merged : float
        Static weights (the paper tries 0.1, 0.5 and 1.0).

    Returns
    -------
    torch.Tensor
        Scalar combined loss.

    Example
    -------
    >>> combine_losses(torch.tensor(3.0), torch.tensor(0.2)).item()
    2.0
    >>> round(combine_losses(torch.tensor(3.0), torch.tensor(0.2), "static", 0.1, 1.0).item(), 4)
    0.5
    """
    if mode == "dynamic":
        return unrolled / unrolled.detach() + merged / merged.detach()
    if mode == "static":
        return w_unrolled * unrolled + w_merged * merged
    raise ValueError(f"mode must be 'dynamic' or 'static', got {mode!r}")


class SequenceBarlowLoss(nn.Module):
    """Both losses of paper 000 and their combination (settings from YAML).

    Arguments
    ---------
    mode : str
        ``"dynamic"`` (the paper's choice) or ``"static"``.
    w_unrolled, w_merged : float
        Static weights.
    eps : float
        BatchNorm epsilon of the standardisation.

    Example
    -------
    >>> loss = SequenceBarlowLoss()
    >>> z = torch.randn(3, 20, 4)
    >>> out = loss(z, z + 0.1 * torch.randn(3, 20, 4), torch.ones(3, 20, dtype=torch.bool))
    >>> sorted(out), round(out["total"].item(), 4)
    (['merged', 'total', 'unrolled'], 2.0)
    """

    def __init__(self, mode="dynamic", w_unrolled=1.0, w_merged=1.0, eps=BATCHNORM_EPS):
        super().__init__()
        if mode not in ("dynamic", "static"):
            raise ValueError(f"mode must be 'dynamic' or 'static', got {mode!r}")
        self.mode = mode
        self.w_unrolled = w_unrolled
        self.w_merged = w_merged
        self.eps = eps

    def forward(self, online, target, frame_mask=None):
        """Returns ``{"unrolled": L_U, "merged": L_M, "total": combined}``.

        Arguments
        ---------
        online, target : torch.Tensor
            ``[batch, time, feature]``.
        frame_mask : torch.BoolTensor, optional
            ``[batch, time]``, ``True`` for valid frames.
        """
        unrolled = time_unrolled_loss(online, target, frame_mask, self.eps)
        merged = time_merged_loss(online, target, frame_mask, self.eps)
        total = combine_losses(unrolled, merged, self.mode, self.w_unrolled, self.w_merged)
        return {"unrolled": unrolled, "merged": merged, "total": total}
