"""Disentangled self-attention (DeBERTa-v2), the context network of SEW-D.

Positions are not added to the content: every layer scores query ``i``
against key ``j`` with three terms,

    content->content   q_i . k_j
    content->position  q_i . K_r[delta(i, j)]      (c2p)
    position->content  k_j . Q_r[delta(i, j)]      (p2c)

divided by ``sqrt(3 * d_head)``, where ``delta(i, j)`` is the relative
distance ``i - j`` put in log buckets (exact for ``|i - j| < buckets / 2``,
logarithmically coarser up to ``max_relative_positions``) and shifted into
``[0, 2 * buckets)``. ``K_r`` / ``Q_r`` are the shared relative embedding table
(after a LayerNorm) passed through the layer's own key / query projections
(DeBERTa-v2's ``share_att_key``). The softmax itself runs in
``scaled_dot_product_attention`` with the c2p + p2c terms as an additive mask.

Parameter names follow HF ``SEWDModel`` (``layer.{i}.attention.self.query_proj``,
``rel_embeddings``, ``LayerNorm``...) so checkpoints interchange without renaming.

Example
-------
>>> import torch
>>> enc = DisentangledTransformer(dim=32, num_layers=2, num_heads=4, ffn_dim=64)
>>> mask = torch.tensor([[True] * 20, [True] * 12 + [False] * 8])
>>> states = enc(torch.randn(2, 20, 32), mask)
>>> len(states), states[-1].shape  # input to layer 1, then every layer
(3, torch.Size([2, 20, 32]))
>>> relative_position_index(5, buckets=4, max_position=8)[0]  # distances 0, -1, -2, ...
tensor([4, 3, 2, 1, 1])
"""
import math

import torch
from torch import nn

from speechbrain_ext.models.components import LayerStack, MultiHeadAttentionBase


def log_bucket_position(relative_pos, buckets, max_position):
    """Relative distances (integer tensor) -> bucketed distances, same sign.

    Distances with ``|d| < buckets // 2`` keep their value; larger ones map to
    ``mid + ceil(log(|d| / mid) / log((max_position - 1) / mid) * (mid - 1))``
    with ``mid = buckets // 2``. The logarithms are taken in float32, as
    DeBERTa-v2 / HF do, so that bucket boundaries agree exactly.
    """
    sign = torch.sign(relative_pos)
    mid = buckets // 2
    inside = (relative_pos < mid) & (relative_pos > -mid)
    abs_pos = torch.where(inside, torch.full_like(relative_pos, mid - 1), relative_pos.abs())
    log_ratio = torch.log(torch.tensor((max_position - 1) / mid, dtype=torch.float32))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / log_ratio * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, relative_pos.to(log_pos.dtype), log_pos * sign).long()


def relative_position_index(length, buckets=256, max_position=512, device=None):
    """``[T, T]`` row index into the ``2 * buckets`` relative embeddings for
    query ``i`` and key ``j``: ``clamp(bucket(i - j) + buckets, 0, 2 * buckets - 1)``."""
    positions = torch.arange(length, device=device)
    distance = positions[:, None] - positions[None, :]
    if buckets > 0 and max_position > 0:
        distance = log_bucket_position(distance, buckets, max_position)
    span = buckets if buckets > 0 else max_position  # no buckets: exact distances
    return torch.clamp(distance + span, 0, 2 * span - 1)


class DisentangledSelfAttention(MultiHeadAttentionBase):
    """Multi-head attention with c2p and p2c relative-position terms.

    Arguments
    ---------
    dim : model width ``D``
    num_heads : heads (``D`` must be divisible)
    dropout : attention-probability dropout
    position_dropout : dropout on the relative embeddings (HF: activation_dropout)
    """

    def __init__(self, dim, num_heads, dropout=0.0, position_dropout=0.0):
        super().__init__(dim, num_heads, dropout)
        self.query_proj = nn.Linear(dim, dim)
        self.key_proj = nn.Linear(dim, dim)
        self.value_proj = nn.Linear(dim, dim)
        self.pos_dropout = nn.Dropout(position_dropout)

    def forward(self, x, rel_embeddings, rel_index, key_mask=None):
        """``x`` ``[B, T, D]``; ``rel_embeddings`` ``[2 * buckets, D]`` (after
        the LayerNorm); ``rel_index`` ``[T, T]`` from ``relative_position_index``;
        ``key_mask`` ``[B, T]`` True where valid. Returns ``[B, T, D]``."""
        batch, time, dim = x.shape
        projections = (self.query_proj, self.key_proj, self.value_proj)
        q, k, v = (self.split_heads(proj(x)) for proj in projections)
        rel = self.pos_dropout(rel_embeddings)
        pos_query = self.split_heads(self.query_proj(rel))  # [H, 2*buckets, d_head]
        pos_key = self.split_heads(self.key_proj(rel))
        scale = 1.0 / math.sqrt(3 * (dim // self.num_heads))  # c2c, c2p, p2c terms
        index = rel_index.expand(batch, self.num_heads, time, time)
        # c2p[i, j] = q_i . K_r[idx(i, j)]
        c2p = torch.gather(q @ pos_key.transpose(-1, -2), -1, index)
        # p2c[i, j] = k_j . Q_r[idx(i, j)]: gather row j at idx(i, j), then transpose
        p2c = torch.gather(k @ pos_query.transpose(-1, -2), -1, index.transpose(-1, -2))
        bias = (c2p + p2c.transpose(-1, -2)) * scale
        if key_mask is not None:
            bias = bias.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        return self.merge_heads(self.attend(q, k, v, bias.to(q.dtype), scale))


class _DenseResidualNorm(nn.Module):
    """``LayerNorm(residual + dropout(Linear(x)))`` (HF ``SEWDSelfOutput`` / ``SEWDOutput``)."""

    def __init__(self, in_dim, dim, dropout=0.0, eps=1e-7):
        super().__init__()
        self.dense = nn.Linear(in_dim, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, residual):
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class _Attention(nn.Module):
    def __init__(self, dim, num_heads, dropout, attention_dropout, eps):
        super().__init__()
        self.self = DisentangledSelfAttention(dim, num_heads, attention_dropout, dropout)
        self.output = _DenseResidualNorm(dim, dim, dropout, eps)

    def forward(self, x, rel_embeddings, rel_index, key_mask=None):
        return self.output(self.self(x, rel_embeddings, rel_index, key_mask), x)


class _Intermediate(nn.Module):
    def __init__(self, dim, ffn_dim):
        super().__init__()
        self.dense = nn.Linear(dim, ffn_dim)
        self.activation = nn.GELU()

    def forward(self, x):
        return self.activation(self.dense(x))


class DisentangledLayer(nn.Module):
    """Post-LN layer: disentangled attention, then the GELU feed-forward."""

    def __init__(self, dim, num_heads, ffn_dim, dropout=0.1, attention_dropout=0.1, eps=1e-7):
        super().__init__()
        self.attention = _Attention(dim, num_heads, dropout, attention_dropout, eps)
        self.intermediate = _Intermediate(dim, ffn_dim)
        self.output = _DenseResidualNorm(ffn_dim, dim, dropout, eps)

    def forward(self, x, rel_embeddings, rel_index, key_mask=None):
        x = self.attention(x, rel_embeddings, rel_index, key_mask)
        return self.output(self.intermediate(x), x)


class DisentangledTransformer(nn.Module):
    """Stack of ``DisentangledLayer`` (a ``LayerStack``, with layerdrop)
    sharing one relative embedding table.

    Returns the list of hidden states: the input, then every layer's output
    (``num_layers + 1`` tensors ``[B, T, D]``). Keep ``layerdrop`` at 0
    wherever per-layer outputs are used (a dropped layer repeats its input).
    """

    def __init__(self, dim=768, num_layers=12, num_heads=12, ffn_dim=3072, dropout=0.1,
                 attention_dropout=0.1, layerdrop=0.0, position_buckets=256,
                 max_relative_positions=512, layer_norm_eps=1e-7):
        super().__init__()
        self.layer = LayerStack([
            DisentangledLayer(dim, num_heads, ffn_dim, dropout, attention_dropout, layer_norm_eps)
            for _ in range(num_layers)], layerdrop)
        self.position_buckets = position_buckets
        self.max_relative_positions = max_relative_positions
        span = position_buckets if position_buckets > 0 else max_relative_positions
        self.rel_embeddings = nn.Embedding(2 * span, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=layer_norm_eps)  # on the relative embeddings

    def forward(self, x, frame_mask=None):
        """``x`` ``[B, T, D]``, ``frame_mask`` ``[B, T]`` (True = real frame)."""
        rel_index = relative_position_index(x.shape[1], self.position_buckets,
                                            self.max_relative_positions, x.device)
        # computed once for all layers: every layer projects the same table
        rel_embeddings = self.LayerNorm(self.rel_embeddings.weight)
        return self.layer(x, frame_mask, rel_embeddings=rel_embeddings, rel_index=rel_index)
