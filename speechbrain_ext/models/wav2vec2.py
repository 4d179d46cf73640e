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
from dataclasses import dataclass

import torch
from torch import nn

from speechbrain_ext.models.components import (BackboneBase, BackboneConfig, BackboneOutput, cnn_features,
                                               draw_channel_mask, mask_channels)
from speechbrain_ext.models.masking import compute_span_mask
from speechbrain_ext.models.transformer import TransformerEncoder


@dataclass
class Wav2Vec2Config(BackboneConfig):
    """Architecture of a wav2vec2 backbone (defaults: wav2vec2-base, fairseq):
    ``BackboneConfig``'s fields and defaults, and the transformer's kind."""

    layer_norm_first: bool = False  # pre-LN ("stable layer norm") transformer

    @classmethod
    def micro(cls, **overrides):
        """A few-million-parameter model for CPU tests and demos."""
        return super().micro(**{"conv_layers": [(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2,
                                "pos_conv_kernel": 16, **overrides})


class FeatureProjection(nn.Module):
    """LayerNorm over CNN channels, then Linear to the model width."""

    def __init__(self, in_dim, out_dim, dropout=0.0, eps=1e-5):
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_dim, eps=eps)
        self.projection = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout)


class Wav2Vec2Backbone(BackboneBase):
    """wav2vec2 network without pre-training heads; ``config`` is a
    ``Wav2Vec2Config`` or its dict (None: wav2vec2-base)."""

    config_class = Wav2Vec2Config

    def __init__(self, config=None):
        super().__init__(config)
        config = self.config
        self.feature_projection = FeatureProjection(
            self.feature_extractor.output_dim, config.dim, config.dropout_input, config.layer_norm_eps)
        self.masked_spec_embed = nn.Parameter(torch.empty(config.dim).uniform_())
        self.encoder = TransformerEncoder(
            **config.encoder_kwargs("activation_dropout", "layer_norm_first"))
        self.reset_parameters()

    def extract_features(self, wav, wav_lens=None):
        """CNN features. Returns (features after LayerNorm ``[B, T, C]``,
        frame_mask ``[B, T]``, feature_penalty)."""
        features, frame_mask, feature_penalty = cnn_features(self, wav, wav_lens)
        return self.feature_projection.layer_norm(features), frame_mask, feature_penalty

    def project(self, features):
        """Normalised CNN features ``[B, T, C]`` -> encoder input ``[B, T, D]``."""
        return self.feature_projection.dropout(self.feature_projection.projection(features))

    def encode(self, x, frame_mask, time_mask=None, channel_mask=None):
        """Encoder input ``[B, T, D]`` -> hidden states; ``time_mask`` ``[B, T]``
        marks frames replaced by the learned mask embedding, then
        ``channel_mask`` ``[B, D]`` channels set to zero at every frame."""
        if time_mask is not None:
            x = torch.where(time_mask[..., None], self.masked_spec_embed.to(x.dtype), x)
        return self.encoder(mask_channels(x, channel_mask), frame_mask)

    def forward(self, wav, wav_lens=None, time_mask=None, span_mask=None, channel_mask=None,
                channel_span_mask=None):
        """``wav`` ``[B, samples]``, ``wav_lens`` ``[B]`` relative lengths in
        (0, 1] (SpeechBrain convention). ``span_mask`` = ``(prob, length,
        min_masks)`` draws fairseq span masking on each utterance's valid
        frames (pre-training) instead of a given ``time_mask``.
        ``channel_span_mask`` = ``(prob, length[, min_masks])`` draws
        fine-tuning's channel mask of the projected features (fairseq
        ``mask_channel_prob``) instead of a given ``channel_mask`` ``[B, D]``;
        it is returned in ``extra["channel_mask"]``. Returns a
        ``BackboneOutput``."""
        features, frame_mask, penalty = self.extract_features(wav, wav_lens)
        if span_mask is not None:
            time_mask = compute_span_mask(frame_mask.sum(dim=1), features.shape[1], *span_mask)
        x = self.project(features)
        channel_mask = draw_channel_mask(x, channel_mask, channel_span_mask)
        states = self.encode(x, frame_mask, time_mask, channel_mask)
        extra = None if channel_mask is None else {"channel_mask": channel_mask}
        return BackboneOutput(features, states, frame_mask, penalty, time_mask, extra=extra)
