"""The wav2vec2 context network: convolutional positional embedding and a
transformer with post-LN (wav2vec2-base) or pre-LN ("stable layer norm",
large models) layers, attention through ``scaled_dot_product_attention``.

Parameter names follow HF transformers' ``Wav2Vec2Encoder``.

Example
-------
>>> import torch
>>> enc = TransformerEncoder(dim=32, num_layers=2, num_heads=4, ffn_dim=64,
...                          pos_conv_kernel=8, pos_conv_groups=4)
>>> states = enc(torch.randn(2, 20, 32), torch.ones(2, 20, dtype=torch.bool))
>>> len(states), states[-1].shape  # input to layer 1, then every layer
(3, torch.Size([2, 20, 32]))
"""
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from speechbrain_ext.models.components import LayerStack, MultiHeadAttentionBase


class ConvPositionalEmbedding(nn.Module):
    """Grouped, weight-normalised conv over time; an even kernel's extra
    output frame is dropped so the length is kept. ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, dim, kernel=128, groups=16, stride=1):
        super().__init__()
        conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=groups, stride=stride)
        self.conv = weight_norm(conv, name="weight", dim=2)
        self.remove = 1 if kernel % 2 == 0 and stride == 1 else 0
        self.activation = nn.GELU()

    def forward(self, x):
        y = self.conv(x.transpose(1, 2))
        if self.remove:
            y = y[..., : -self.remove]
        return self.activation(y).transpose(1, 2)


class SelfAttention(MultiHeadAttentionBase):
    """Multi-head self-attention with a key-padding mask."""

    def __init__(self, dim, num_heads, dropout=0.0):
        super().__init__(dim, num_heads, dropout)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, key_mask=None):
        """``x`` ``[B, T, D]``; ``key_mask`` ``[B, T]`` True where valid."""
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        return self.out_proj(self.merge_heads(self.attend(q, k, v, attn_mask)))


class FeedForward(nn.Module):
    def __init__(self, dim, ffn_dim, activation_dropout=0.0, dropout=0.0):
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, ffn_dim)
        self.intermediate_act_fn = nn.GELU()
        self.intermediate_dropout = nn.Dropout(activation_dropout)
        self.output_dense = nn.Linear(ffn_dim, dim)
        self.output_dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.intermediate_dropout(self.intermediate_act_fn(self.intermediate_dense(x)))
        return self.output_dropout(self.output_dense(x))


class TransformerLayer(nn.Module):
    """One encoder layer; ``layer_norm_first`` selects pre-LN, else post-LN."""

    def __init__(self, dim, num_heads, ffn_dim, dropout=0.1, attention_dropout=0.1,
                 activation_dropout=0.0, layer_norm_first=False, layer_norm_eps=1e-5):
        super().__init__()
        self.attention = SelfAttention(dim, num_heads, attention_dropout)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.feed_forward = FeedForward(dim, ffn_dim, activation_dropout, dropout)
        self.final_layer_norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.layer_norm_first = layer_norm_first

    def forward(self, x, key_mask=None):
        if self.layer_norm_first:
            x = x + self.dropout(self.attention(self.layer_norm(x), key_mask))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.dropout(self.attention(x, key_mask)))
        return self.final_layer_norm(x + self.feed_forward(x))


class TransformerEncoder(nn.Module):
    """Positional conv + transformer layers with layerdrop (``LayerStack``).

    Returns the list of hidden states: the input to the first layer, then
    the output of every layer (``num_layers + 1`` tensors ``[B, T, D]``), as
    HF's ``output_hidden_states``; for pre-LN the last one is after the
    final LayerNorm. Keep ``layerdrop`` at 0 wherever per-layer outputs are
    used (a dropped layer repeats its input).
    """

    def __init__(self, dim=768, num_layers=12, num_heads=12, ffn_dim=3072, dropout=0.1,
                 attention_dropout=0.1, activation_dropout=0.0, layerdrop=0.0,
                 pos_conv_kernel=128, pos_conv_groups=16, layer_norm_first=False,
                 layer_norm_eps=1e-5):
        super().__init__()
        self.pos_conv_embed = ConvPositionalEmbedding(dim, pos_conv_kernel, pos_conv_groups)
        self.layer_norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.layers = LayerStack([
            TransformerLayer(dim, num_heads, ffn_dim, dropout, attention_dropout,
                             activation_dropout, layer_norm_first, layer_norm_eps)
            for _ in range(num_layers)
        ], layerdrop)
        self.layer_norm_first = layer_norm_first

    def forward(self, x, frame_mask=None):
        """``x`` ``[B, T, D]``, ``frame_mask`` ``[B, T]`` (True = real frame)."""
        if frame_mask is not None:
            x = x.masked_fill(~frame_mask[..., None], 0.0)
        x = x + self.pos_conv_embed(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        states = self.layers(self.dropout(x), frame_mask)
        if self.layer_norm_first:
            states[-1] = self.layer_norm(states[-1])
        return states
