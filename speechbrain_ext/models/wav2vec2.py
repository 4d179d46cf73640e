"""The wav2vec2 backbone: CNN feature extractor, feature LayerNorm and
projection, optional time masking with a learned embedding, and the
transformer context network.

State-dict names equal HF ``Wav2Vec2Model``'s, so an HF folder loads with
no renaming (see ``speechbrain_ext.interop.hf``). ``Wav2Vec2Config`` holds the
architecture; sizes of the model zoo live in ``speechbrain_ext.models.zoo``.

Example
-------
>>> import torch
>>> cfg = Wav2Vec2Config.micro()
>>> model = Wav2Vec2Backbone(cfg).eval()
>>> out = model(torch.randn(2, 16000), wav_lens=torch.tensor([1.0, 0.5]))
>>> len(out.hidden_states) == cfg.num_layers + 1, out.hidden_states[-1].shape
(True, torch.Size([2, 49, 64]))
>>> out.frame_mask.sum(dim=1)
tensor([49, 24])
"""
from dataclasses import dataclass, field
from typing import List

import torch
from torch import nn

from speechbrain_ext.models.components import (BackboneOutput, DictConfig, cnn_features,
                                               init_conv_feature_extractor, init_positional_conv)
from speechbrain_ext.models.feature_extractor import WAV2VEC2_CONV_LAYERS, ConvFeatureExtractor
from speechbrain_ext.models.masking import compute_span_mask
from speechbrain_ext.models.transformer import TransformerEncoder


@dataclass
class Wav2Vec2Config(DictConfig):
    """Architecture of a wav2vec2 backbone (defaults: wav2vec2-base, fairseq)."""

    conv_layers: List[tuple] = field(default_factory=lambda: list(WAV2VEC2_CONV_LAYERS))
    extractor_mode: str = "group_norm"  # or "layer_norm"
    conv_bias: bool = False
    # fairseq's task.normalize / HF's do_normalize: each waveform scaled to
    # zero mean and unit variance over its valid samples before the CNN
    # (fairseq's layer_norm-mode models are trained with it)
    normalize_waveform: bool = False
    dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    ffn_dim: int = 3072
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    layer_norm_first: bool = False  # pre-LN ("stable layer norm") transformer
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    dropout_input: float = 0.1
    layerdrop: float = 0.05
    feature_grad_mult: float = 0.1

    def __post_init__(self):
        self.conv_layers = [tuple(int(v) for v in layer) for layer in self.conv_layers]

    @classmethod
    def micro(cls, **overrides):
        """A few-million-parameter model for CPU tests and demos."""
        base = dict(conv_layers=[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2,
                    dim=64, num_layers=2, num_heads=4, ffn_dim=128, pos_conv_kernel=16,
                    pos_conv_groups=4, layerdrop=0.0)
        return cls(**{**base, **overrides})


class FeatureProjection(nn.Module):
    """LayerNorm over CNN channels, then Linear to the model width."""

    def __init__(self, in_dim, out_dim, dropout=0.0, eps=1e-5):
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_dim, eps=eps)
        self.projection = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout)


class Wav2Vec2Backbone(nn.Module):
    """wav2vec2 network without pre-training heads.

    Arguments
    ---------
    config : Wav2Vec2Config or dict
    """

    def __init__(self, config=None):
        super().__init__()
        if config is None:
            config = Wav2Vec2Config()
        elif isinstance(config, dict):
            config = Wav2Vec2Config.from_dict(config)
        self.config = config
        self.feature_extractor = ConvFeatureExtractor(
            config.conv_layers, config.extractor_mode, config.conv_bias)
        cnn_dim = self.feature_extractor.output_dim
        self.feature_projection = FeatureProjection(
            cnn_dim, config.dim, config.dropout_input, config.layer_norm_eps)
        self.masked_spec_embed = nn.Parameter(torch.empty(config.dim).uniform_())
        self.encoder = TransformerEncoder(
            dim=config.dim, num_layers=config.num_layers, num_heads=config.num_heads,
            ffn_dim=config.ffn_dim, dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            activation_dropout=config.activation_dropout, layerdrop=config.layerdrop,
            pos_conv_kernel=config.pos_conv_kernel, pos_conv_groups=config.pos_conv_groups,
            layer_norm_first=config.layer_norm_first, layer_norm_eps=config.layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self):
        """fairseq's initialisation (HF's is the same): Kaiming-normal CNN
        weights; in the transformer, N(0, 0.02) linear weights with zero biases
        (BERT init) and a positional conv of std sqrt(4 / (kernel * dim)).
        PyTorch's defaults instead shrink the signal through the unnormalised
        conv blocks (feature penalty ~1e-7 at init instead of ~1)."""
        init_conv_feature_extractor(self.feature_extractor)
        for module in self.encoder.layers.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                nn.init.zeros_(module.bias)
        init_positional_conv(self.encoder.pos_conv_embed.conv, self.config.dim)

    @property
    def num_hidden_states(self):
        return self.config.num_layers + 1

    def frame_lengths(self, num_samples):
        """Frames for ``num_samples`` samples (``[B]`` tensor or int)."""
        return self.feature_extractor.output_lengths(num_samples)

    def extract_features(self, wav, wav_lens=None):
        """CNN features. Returns (features after LayerNorm ``[B, T, C]``,
        frame_mask ``[B, T]``, feature_penalty)."""
        features, frame_mask, feature_penalty = cnn_features(self, wav, wav_lens)
        return self.feature_projection.layer_norm(features), frame_mask, feature_penalty

    def project(self, features):
        """Normalised CNN features ``[B, T, C]`` -> encoder input ``[B, T, D]``."""
        return self.feature_projection.dropout(self.feature_projection.projection(features))

    def encode(self, x, frame_mask, time_mask=None):
        """Encoder input ``[B, T, D]`` -> hidden states; ``time_mask`` ``[B, T]``
        marks frames replaced by the learned mask embedding."""
        if time_mask is not None:
            x = torch.where(time_mask[..., None], self.masked_spec_embed.to(x.dtype), x)
        return self.encoder(x, frame_mask)

    def forward(self, wav, wav_lens=None, time_mask=None, span_mask=None):
        """``wav`` ``[B, samples]``, ``wav_lens`` ``[B]`` relative lengths in
        (0, 1] (SpeechBrain convention). ``span_mask`` = ``(prob, length,
        min_masks)`` draws fairseq span masking on each utterance's valid
        frames (pre-training) instead of a given ``time_mask``. Returns a
        ``BackboneOutput``."""
        features, frame_mask, penalty = self.extract_features(wav, wav_lens)
        if span_mask is not None:
            time_mask = compute_span_mask(frame_mask.sum(dim=1), features.shape[1], *span_mask)
        states = self.encode(self.project(features), frame_mask, time_mask)
        return BackboneOutput(features, states, frame_mask, penalty, time_mask)
