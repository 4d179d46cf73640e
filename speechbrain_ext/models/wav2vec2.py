"""The wav2vec2 backbone: CNN feature extractor, feature LayerNorm and
projection, optional time masking with a learned embedding, and the
transformer context network.

State-dict names equal HF ``Wav2Vec2Model``'s, so an HF folder loads with
no renaming (see ``speechbrain_ext.convert``). ``Wav2Vec2Config`` holds the
architecture; sizes of the model zoo live in ``speechbrain_ext.zoo``.

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
import math
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional

import torch
from torch import nn

from ..masking import compute_span_mask
from .feature_extractor import WAV2VEC2_CONV_LAYERS, ConvFeatureExtractor
from .transformer import TransformerEncoder


class DictConfig:
    """``to_dict`` / ``from_dict`` of a backbone config dataclass (the form
    saved in checkpoints and written in YAMLs); an unknown key is an error
    naming it."""

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; expected some of {sorted(known)}")
        return cls(**values)


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


@dataclass
class BackboneOutput:
    """What a backbone returns.

    features : ``[B, T, C]`` CNN output after the feature LayerNorm, unmasked
        (wav2vec2's quantizer targets come from these).
    hidden_states : ``num_layers + 1`` tensors ``[B, T, D]``: the projected
        CNN features as they enter the first layer, then every layer's output.
    frame_mask : ``[B, T]`` bool, True on real (unpadded) frames.
    feature_penalty : scalar, mean squared CNN activation (fairseq's penalty).
    time_mask : ``[B, T]`` bool, frames replaced by the mask embedding (or None).
    """

    features: torch.Tensor
    hidden_states: List[torch.Tensor]
    frame_mask: torch.Tensor
    feature_penalty: torch.Tensor
    time_mask: Optional[torch.Tensor] = None
    extra: Optional[dict] = None

    @property
    def last_hidden_state(self):
        return self.hidden_states[-1]


def frame_mask_from_lengths(frame_lengths, max_frames):
    """``[B]`` frame counts -> ``[B, max_frames]`` bool mask."""
    return torch.arange(max_frames, device=frame_lengths.device)[None, :] < frame_lengths[:, None]


def scale_gradient(x, scale):
    """Identity forward, gradient multiplied by ``scale`` (fairseq GradMultiply)."""
    if scale == 1.0:
        return x
    return x * scale + x.detach() * (1.0 - scale)


def init_conv_feature_extractor(feature_extractor):
    """fairseq's init of the CNN: Kaiming-normal conv weights; biases (when
    ``conv_bias``) keep PyTorch's default uniform(+-1/sqrt(fan_in)), as in
    fairseq and HF. A zero bias would leave a layer_norm-mode CNN unable to
    tell silence from speech at the start (its LayerNorm removes the scale)."""
    for block in feature_extractor.conv_layers:
        block.conv.reset_parameters()
        nn.init.kaiming_normal_(block.conv.weight)


def normalize_waveforms(wav, samples=None, eps=1e-7):
    """Zero mean, unit variance per waveform over its first ``samples``
    valid samples (all when ``None``); padding stays zero.

    Arguments
    ---------
    wav : torch.Tensor
        ``[batch, samples]``.
    samples : torch.LongTensor, optional
        ``[batch]`` valid lengths.

    Example
    -------
    >>> out = normalize_waveforms(torch.tensor([[1.0, 3.0, 0.0]]), torch.tensor([2]))
    >>> out.tolist()
    [[-1.0, 1.0, 0.0]]
    """
    if samples is None:
        valid = torch.ones_like(wav, dtype=torch.bool)
    else:
        valid = frame_mask_from_lengths(samples.to(wav.device), wav.shape[1])
    count = valid.sum(1, keepdim=True).clamp(min=1)
    mean = (wav * valid).sum(1, keepdim=True) / count
    variance = ((wav - mean).pow(2) * valid).sum(1, keepdim=True) / count
    return torch.where(valid, (wav - mean) / torch.sqrt(variance + eps), torch.zeros_like(wav))


def init_positional_conv(conv, dim):
    """fairseq's init of the (weight-normed) positional convolution:
    normal with std sqrt(4 / (kernel * dim)), zero bias."""
    with torch.no_grad():
        weight = torch.empty_like(conv.weight).normal_(0.0, math.sqrt(4.0 / (conv.kernel_size[0] * dim)))
        conv.weight = weight  # weight-norm parametrization: sets g and v from weight
        nn.init.zeros_(conv.bias)


def cnn_features(backbone, wav, wav_lens=None):
    """The CNN part shared by wav2vec2, SEW and SEW-D: waveforms ``[B, S]``
    -> (features ``[B, T, C]`` before their LayerNorm, frame_mask ``[B, T]``,
    feature_penalty), with fairseq's gradient scaling of the CNN in training.
    ``backbone`` has ``feature_extractor``, ``config.feature_grad_mult`` and
    ``frame_lengths``."""
    if wav.dim() != 2:
        raise ValueError(f"expected waveforms [batch, samples], got shape {tuple(wav.shape)}")
    samples = None
    if wav_lens is not None:
        samples = torch.round(wav_lens.to(wav.device).float() * wav.shape[1]).long()
    if backbone.config.normalize_waveform:
        wav = normalize_waveforms(wav, samples)
    features = backbone.feature_extractor(wav)
    features = scale_gradient(features, backbone.config.feature_grad_mult if backbone.training else 1.0)
    feature_penalty = features.float().pow(2).mean()
    batch, frames = features.shape[:2]
    if samples is None:
        frame_mask = torch.ones(batch, frames, dtype=torch.bool, device=wav.device)
    else:
        frame_mask = frame_mask_from_lengths(
            backbone.frame_lengths(samples).clamp(min=0, max=frames), frames)
    return features, frame_mask, feature_penalty


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
