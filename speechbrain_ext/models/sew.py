"""SEW and SEW-D backbones (paper 002): a compact wave feature extractor
(WFE-C) and a squeezed context network, with wav2vec2's post-LN transformer
(SEW) or DeBERTa-v2 disentangled attention (SEW-D).

Squeezing (paper 002, Sec. 3.1): the positional convolution gets stride
``s`` and is added to an ``AvgPool1d(s, s)`` of its input (the shortcut), so
the transformer runs on ``T // s`` frames; afterwards ``Linear(D -> s*D)`` +
GELU, reshaped to ``s`` frames per input frame (the same map as a transposed
convolution of kernel and stride ``s``), zero-padded back to ``T`` frames.

Outputs follow the backbone contract: every ``hidden_states`` entry is
``[B, T, D]`` at the CNN frame rate. The last one is the learned upsampling
of the last layer (what fine-tuning uses, HF's ``last_hidden_state``); the
earlier ones (input to layer 1, then layers 1..L-1) are repeated ``s`` times
in time (nearest-neighbour upsampling; the learned upsampling is trained on
the last layer only), zero-padded to ``T``. The squeezed states themselves
are in ``extra["squeezed_hidden_states"]`` (``[B, T // s, D]``, as HF's
``hidden_states``) with ``extra["squeezed_frame_mask"]``.

Padding (as HF transformers 5.x): padded frames are zeroed before the
positional conv; a squeezed frame is real when any of its ``s`` frames is
(max-pooled mask, ``ceil(len / s)`` real frames). The attention ignores
padded keys.

State-dict names equal HF ``SEWModel`` / ``SEWDModel``'s, so HF folders load
with no renaming (``speechbrain_ext.interop.hf``).

Example
-------
>>> import torch
>>> cfg = SEWDConfig.micro()
>>> model = SEWDBackbone(cfg).eval()
>>> out = model(torch.randn(2, 16000), wav_lens=torch.tensor([1.0, 0.5]))
>>> len(out.hidden_states) == cfg.num_layers + 1, out.hidden_states[-1].shape
(True, torch.Size([2, 49, 64]))
>>> out.frame_mask.sum(dim=1), out.extra["squeezed_frame_mask"].sum(dim=1)
(tensor([49, 24]), tensor([24, 12]))
>>> wfe_c_layers(64)[:3]  # (channels, kernel, stride)
[(64, 10, 5), (128, 3, 2), (128, 1, 1)]
"""
from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_ext.models.components import (BackboneBase, BackboneConfig, BackboneOutput, cnn_features,
                                               draw_channel_mask, mask_channels)
from speechbrain_ext.models.disentangled_attention import DisentangledTransformer
from speechbrain_ext.models.masking import compute_span_mask
from speechbrain_ext.models.transformer import ConvPositionalEmbedding, TransformerEncoder


def wfe_c_layers(channels=64, pointwise=True):
    """WFE-C layers ``(channels, kernel, stride)``: channels (c, 2c, 2c, 4c,
    4c, 8c, 8c) with wav2vec2's kernels (10, 3, 3, 3, 3, 2, 2) and strides (5,
    2, 2, 2, 2, 2, 2), total stride 320. ``pointwise`` adds a 1x1 conv after
    every conv but the first ("-11" variant, 13 layers, paper 002 Sec. 3.2).
    Paper 002's text says a first kernel of 7, but also that WFE-O's kernels
    are kept; WFE-O's (and asappresearch/sew's, HF's) first kernel is 10."""
    c = channels
    base = [(c, 10, 5), (2 * c, 3, 2), (2 * c, 3, 2), (4 * c, 3, 2), (4 * c, 3, 2),
            (8 * c, 2, 2), (8 * c, 2, 2)]
    if not pointwise:
        return base
    layers = [base[0]]
    for width, kernel, stride in base[1:]:
        layers += [(width, kernel, stride), (width, 1, 1)]
    return layers


@dataclass
class SEWConfig(BackboneConfig):
    """Architecture of a SEW backbone (defaults: WFE-C-c64-11, E768 L12,
    positional conv k31 with squeeze factor 2; asappresearch/sew, paper 002):
    ``BackboneConfig``'s fields, with the CNN and positional conv overridden,
    and the squeeze. Dropouts are fairseq's wav2vec2-base pre-training values
    (paper 002 uses that config)."""

    conv_layers: List[tuple] = field(default_factory=lambda: wfe_c_layers(64))
    pos_conv_kernel: int = 31
    squeeze_factor: int = 2
    feature_layer_norm_eps: float = 1e-5

    def __post_init__(self):
        super().__post_init__()
        if self.squeeze_factor < 1:
            raise ValueError(f"squeeze_factor must be >= 1, got {self.squeeze_factor}")

    @classmethod
    def micro(cls, **overrides):
        """A model of well under a million parameters for CPU tests."""
        return super().micro(**{"conv_layers": wfe_c_layers(8), "pos_conv_kernel": 15, **overrides})


@dataclass
class SEWDConfig(SEWConfig):
    """SEW-D: SEW with DeBERTa-v2 disentangled attention (log-bucketed
    relative positions, 256 buckets up to distance 512; LayerNorm eps 1e-7
    as DeBERTa / asappresearch/sew)."""

    layer_norm_eps: float = 1e-7
    position_buckets: int = 256
    max_relative_positions: int = 512

    @classmethod
    def micro(cls, **overrides):
        # few buckets so that short test inputs reach the logarithmic range
        return super().micro(**{"position_buckets": 8, "max_relative_positions": 32, **overrides})


class Upsampling(nn.Module):
    """``[B, T', D]`` -> ``[B, length, D]``: Linear(D -> s*D) + GELU, each
    frame's output split into ``s`` frames, zero-padded (or cut) to ``length``."""

    def __init__(self, dim, factor):
        super().__init__()
        self.projection = nn.Linear(dim, dim * factor)
        self.activation = nn.GELU()
        self.factor = factor

    def forward(self, x, length):
        batch, frames, dim = x.shape
        y = self.activation(self.projection(x)).reshape(batch, frames * self.factor, dim)
        return fit_length(y, length)


def fit_length(x, length):
    """Zero-pad or cut ``[B, T, D]`` to ``length`` frames."""
    if x.shape[1] >= length:
        return x[:, :length]
    return F.pad(x, (0, 0, 0, length - x.shape[1]))


def repeat_frames(x, factor, length):
    """Nearest-neighbour upsampling ``[B, T', D]`` -> ``[B, length, D]``."""
    return fit_length(x.repeat_interleave(factor, dim=1), length)


def squeeze_modules(dim, kernel, groups, factor):
    """The squeeze's modules: the positional conv of stride ``factor`` and
    the ``AvgPool1d(factor, factor)`` shortcut (``squeeze_frames``)."""
    return ConvPositionalEmbedding(dim, kernel, groups, stride=factor), nn.AvgPool1d(factor, factor)


def run_squeezed(encoder, x, frame_mask, context):
    """What both squeezed encoders do around their transformer ``context``
    (``context(x [B, T // s, D], mask) -> states``): squeeze ``x`` ``[B, T,
    D]``, run it, learn-upsample the last state. Returns ``(states [B, T // s,
    D], squeezed mask [B, T // s], upsampled last state [B, T, D])``."""
    length = x.shape[1]
    x, mask = squeeze_frames(x, frame_mask, encoder.pos_conv_embed, encoder.pool, encoder.squeeze_factor)
    states = context(x, mask)
    return states, mask, encoder.upsample(states[-1], length)


def squeeze_frames(x, frame_mask, pos_conv_embed, pool, factor):
    """``[B, T, D]`` -> ``(pool(x) + strided pos conv(x))`` ``[B, T // s, D]``
    and the squeezed frame mask ``[B, T // s]`` (None stays None)."""
    if frame_mask is not None:
        x = x.masked_fill(~frame_mask[..., None], 0.0)
    pooled = pool(x.transpose(1, 2)).transpose(1, 2)
    squeezed = pooled + pos_conv_embed(x)[:, : pooled.shape[1]]
    if frame_mask is not None:
        frame_mask = F.max_pool1d(frame_mask[:, None].float(), factor, factor)[:, 0].bool()
    return squeezed, frame_mask


class SqueezedTransformerEncoder(TransformerEncoder):
    """SEW's context network: wav2vec2's post-LN transformer (same layers and
    names) at ``1/s`` of the frame rate. ``forward`` returns ``(states at
    T // s, squeezed mask, upsampled last state [B, T, D])``."""

    def __init__(self, dim=768, num_layers=12, num_heads=12, ffn_dim=3072, dropout=0.1,
                 attention_dropout=0.1, activation_dropout=0.0, layerdrop=0.0,
                 pos_conv_kernel=31, pos_conv_groups=16, squeeze_factor=2, layer_norm_eps=1e-5):
        super().__init__(dim, num_layers, num_heads, ffn_dim, dropout, attention_dropout,
                         activation_dropout, layerdrop, pos_conv_kernel, pos_conv_groups,
                         layer_norm_first=False, layer_norm_eps=layer_norm_eps)
        # replaces the parent's unstrided positional conv (keeping its place
        # among the modules); building that one first keeps the random draws,
        # hence seeded initialisations, as they always were
        self.pos_conv_embed, self.pool = squeeze_modules(
            dim, pos_conv_kernel, pos_conv_groups, squeeze_factor)
        self.upsample = Upsampling(dim, squeeze_factor)
        self.squeeze_factor = squeeze_factor

    def forward(self, x, frame_mask=None):
        """``x`` ``[B, T, D]``, ``frame_mask`` ``[B, T]`` (True = real frame)."""
        return run_squeezed(self, x, frame_mask, self._context)

    def _context(self, x, mask):
        # wav2vec2's post-LN entry (LayerNorm, dropout) on the squeezed frames
        return self.layers(self.dropout(self.layer_norm(x)), mask)


class SqueezedDisentangledEncoder(nn.Module):
    """SEW-D's context network: squeeze, disentangled-attention transformer
    (no LayerNorm or dropout after the squeeze, as HF ``SEWDEncoder``),
    upsample. Same ``forward`` contract as ``SqueezedTransformerEncoder``."""

    def __init__(self, dim=768, num_layers=12, num_heads=12, ffn_dim=3072, dropout=0.1,
                 attention_dropout=0.1, layerdrop=0.0, pos_conv_kernel=31, pos_conv_groups=16,
                 squeeze_factor=2, position_buckets=256, max_relative_positions=512,
                 layer_norm_eps=1e-7):
        super().__init__()
        self.pos_conv_embed, self.pool = squeeze_modules(
            dim, pos_conv_kernel, pos_conv_groups, squeeze_factor)
        self.encoder = DisentangledTransformer(
            dim, num_layers, num_heads, ffn_dim, dropout, attention_dropout, layerdrop,
            position_buckets, max_relative_positions, layer_norm_eps)
        self.upsample = Upsampling(dim, squeeze_factor)
        self.squeeze_factor = squeeze_factor

    def forward(self, x, frame_mask=None):
        """``x`` ``[B, T, D]``, ``frame_mask`` ``[B, T]`` (True = real frame)."""
        return run_squeezed(self, x, frame_mask, self.encoder)


class SEWBackbone(BackboneBase):
    """SEW network without pre-training heads (same interface as
    ``Wav2Vec2Backbone``); ``config`` is a ``SEWConfig`` or its dict."""

    config_class = SEWConfig

    def __init__(self, config=None):
        super().__init__(config)
        config = self.config
        cnn_dim = self.feature_extractor.output_dim
        self.layer_norm = nn.LayerNorm(cnn_dim, eps=config.feature_layer_norm_eps)
        # fairseq / HF SEW: a projection only where the widths differ
        if cnn_dim != config.dim:
            self.feature_projection = nn.Linear(cnn_dim, config.dim)
        self.feature_dropout = nn.Dropout(config.dropout_input)
        self.masked_spec_embed = nn.Parameter(torch.empty(config.dim).uniform_())
        self.encoder = self._build_encoder(config)
        self.reset_parameters()

    @staticmethod
    def _build_encoder(config):
        return SqueezedTransformerEncoder(
            **config.encoder_kwargs("activation_dropout", "squeeze_factor"))

    def extract_features(self, wav, wav_lens=None):
        """CNN features. Returns (features after LayerNorm ``[B, T, C]``,
        frame_mask ``[B, T]``, feature_penalty)."""
        features, frame_mask, feature_penalty = cnn_features(self, wav, wav_lens)
        return self.layer_norm(features), frame_mask, feature_penalty

    def project(self, features):
        """Normalised CNN features ``[B, T, C]`` -> encoder input ``[B, T, D]``."""
        if hasattr(self, "feature_projection"):
            features = self.feature_projection(features)
        return self.feature_dropout(features)

    def forward(self, wav, wav_lens=None, time_mask=None, span_mask=None, channel_mask=None,
                channel_span_mask=None):
        """As ``Wav2Vec2Backbone.forward``; masking (time, then channels)
        happens at the CNN frame rate, before the squeeze. Returns a
        ``BackboneOutput``."""
        features, frame_mask, penalty = self.extract_features(wav, wav_lens)
        if span_mask is not None:
            time_mask = compute_span_mask(frame_mask.sum(dim=1), features.shape[1], *span_mask)
        x = self.project(features)
        channel_mask = draw_channel_mask(x, channel_mask, channel_span_mask)
        if time_mask is not None:
            x = torch.where(time_mask[..., None], self.masked_spec_embed.to(x.dtype), x)
        x = mask_channels(x, channel_mask)
        squeezed, squeezed_mask, upsampled = self.encoder(x, frame_mask)
        frames, factor = x.shape[1], self.config.squeeze_factor
        states = [repeat_frames(s, factor, frames) for s in squeezed[:-1]] + [upsampled]
        extra = {"squeezed_hidden_states": squeezed, "squeezed_frame_mask": squeezed_mask}
        if channel_mask is not None:
            extra["channel_mask"] = channel_mask
        return BackboneOutput(features, states, frame_mask, penalty, time_mask, extra=extra)


class SEWDBackbone(SEWBackbone):
    """SEW-D network without pre-training heads (disentangled attention)."""

    config_class = SEWDConfig

    @staticmethod
    def _build_encoder(config):
        return SqueezedDisentangledEncoder(**config.encoder_kwargs(
            "squeeze_factor", "position_buckets", "max_relative_positions"))
