"""Pieces every backbone shares, written once: the config base
(``BackboneConfig``: the fields wav2vec2 and SEW share, ``to_dict`` /
``from_dict``), the backbone base (``BackboneBase``: config, CNN,
initialisation, frame counts), the output record, the attention base (heads,
dropout), the encoder layer loop (``LayerStack``: LayerDrop, key masks, every
layer's output), waveform normalisation, the CNN front end's forward
(``cnn_features``: normalise, CNN, frame mask, gradient scaling) and the
fairseq / BERT initialisations. Frame masks are SpeechBrain's
``length_to_mask``.

Example
-------
>>> import torch
>>> config = BackboneConfig.micro(num_layers=3)
>>> config.num_layers, config.encoder_kwargs()["dim"]
(3, 64)
>>> length_to_mask(torch.tensor([3, 1]), 4, dtype=torch.bool)  # frame masks: SpeechBrain's
tensor([[ True,  True,  True, False],
        [ True, False, False, False]])
"""
import math
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional

import torch
import torch.nn.functional as F
from speechbrain.dataio.dataio import length_to_mask
from torch import nn

from speechbrain_ext.models.feature_extractor import WAV2VEC2_CONV_LAYERS, ConvFeatureExtractor
from speechbrain_ext.models.filterbank import FilterBankFeatureExtractor
from speechbrain_ext.models.masking import compute_channel_mask


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


# Every encoder takes these arguments under these names (encoder_kwargs).
ENCODER_KEYS = ("dim", "num_layers", "num_heads", "ffn_dim", "dropout", "attention_dropout",
                "layerdrop", "pos_conv_kernel", "pos_conv_groups", "layer_norm_eps")


@dataclass
class BackboneConfig(DictConfig):
    """The architecture fields wav2vec2 and SEW share, with wav2vec2-base's
    (fairseq's) defaults; ``Wav2Vec2Config`` and ``SEWConfig`` add their own
    fields and override defaults (dataclass inheritance: an overridden field
    keeps its place, new fields come after these in ``to_dict``).

    Example
    -------
    >>> BackboneConfig(conv_layers=[[8, 10, 5]]).conv_layers  # YAML lists -> tuples
    [(8, 10, 5)]
    >>> sorted(BackboneConfig.micro().encoder_kwargs("activation_dropout"))[:3]
    ['activation_dropout', 'attention_dropout', 'dim']
    """

    conv_layers: List[tuple] = field(default_factory=lambda: list(WAV2VEC2_CONV_LAYERS))
    # "group_norm" / "layer_norm": the wave feature extractor (WFE) with that
    # normalisation; "fbfe": paper 002's filter-bank front end
    # (speechbrain_ext.models.filterbank), conv_layers then its 2D convs
    extractor_mode: str = "group_norm"
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
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0  # inside the feed-forward (not in SEW-D: DeBERTa has none)
    dropout_input: float = 0.1
    layerdrop: float = 0.05
    feature_grad_mult: float = 0.1

    def __post_init__(self):
        self.conv_layers = [tuple(int(v) for v in layer) for layer in self.conv_layers]

    @classmethod
    def micro(cls, **overrides):
        """Width 64, 2 layers, no LayerDrop: the size of every micro test
        model (a subclass gives its CNN and positional conv)."""
        base = dict(dim=64, num_layers=2, num_heads=4, ffn_dim=128, pos_conv_groups=4, layerdrop=0.0)
        return cls(**{**base, **overrides})

    def encoder_kwargs(self, *names):
        """Keyword arguments of the context network: ``ENCODER_KEYS`` and ``names``."""
        return {name: getattr(self, name) for name in ENCODER_KEYS + names}


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


class MultiHeadAttentionBase(nn.Module):
    """What the backbones' attention modules share: ``num_heads`` heads over
    the width (which they must divide), dropout on the attention
    probabilities (training only) and the split / merge of heads; each
    subclass adds its own projections (their names are HF's).

    Example
    -------
    >>> attention = MultiHeadAttentionBase(8, num_heads=2)
    >>> heads = attention.split_heads(torch.randn(3, 5, 8))  # [batch, heads, time, dim / heads]
    >>> heads.shape, attention.merge_heads(attention.attend(heads, heads, heads)).shape
    (torch.Size([3, 2, 5, 4]), torch.Size([3, 5, 8]))
    """

    def __init__(self, dim, num_heads, dropout=0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout

    def split_heads(self, x):
        """``[..., time, dim]`` -> ``[..., heads, time, dim / heads]``."""
        *lead, time, dim = x.shape
        return x.view(*lead, time, self.num_heads, dim // self.num_heads).transpose(-3, -2)

    def merge_heads(self, x):
        """``[batch, heads, time, dim / heads]`` -> ``[batch, time, dim]``."""
        batch, heads, time, head_dim = x.shape
        return x.transpose(1, 2).reshape(batch, time, heads * head_dim)

    def attend(self, q, k, v, mask=None, scale=None):
        """``scaled_dot_product_attention`` of ``[batch, heads, time, dim /
        heads]`` queries, keys, values; ``mask`` bool (True = attend) or
        additive; ``scale`` None is ``1 / sqrt(dim / heads)``."""
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale,
                                              dropout_p=self.dropout if self.training else 0.0)


class LayerStack(nn.ModuleList):
    """Encoder layers run in turn with LayerDrop, returning every layer's
    output: the one layer loop of wav2vec2's, SEW's and SEW-D's encoders.

    A ``nn.ModuleList`` itself, so that the layers keep their names
    (``layers.{i}.``, HF's) where an encoder registers the stack.

    Arguments
    ---------
    layers : iterable of nn.Module
        Called as ``layer(x, key_mask=key_mask, **layer_kwargs)`` ->
        ``[batch, time, dim]``.
    layerdrop : float
        Probability that a layer is skipped, in training only (fairseq's
        LayerDrop); a skipped layer's output is its input.

    Example
    -------
    >>> class Scale(nn.Module):
    ...     def forward(self, x, key_mask=None, factor=2.0):
    ...         return x * factor * key_mask[..., None]
    >>> stack = LayerStack([Scale(), Scale()], layerdrop=0.5).eval()
    >>> states = stack(torch.ones(1, 3, 1), torch.tensor([[True, True, False]]), factor=3.0)
    >>> [s[0, :, 0].tolist() for s in states]  # the input, then every layer's output
    [[1.0, 1.0, 1.0], [3.0, 3.0, 0.0], [9.0, 9.0, 0.0]]
    >>> all(s is states[0] for s in LayerStack([Scale()], layerdrop=1.0)(states[0]))
    True
    """

    def __init__(self, layers=None, layerdrop=0.0):
        super().__init__(layers)
        self.layerdrop = layerdrop

    def __getitem__(self, idx):
        item = super().__getitem__(idx)
        if isinstance(idx, slice):  # ModuleList builds the slice without our arguments
            item.layerdrop = self.layerdrop
        return item

    def forward(self, x, frame_mask=None, **layer_kwargs):
        """``x`` ``[batch, time, dim]``, ``frame_mask`` ``[batch, time]`` (True
        = real frame; None = all real) -> ``len(self) + 1`` tensors ``[batch,
        time, dim]``. Extra keyword arguments go to every layer."""
        # no key mask when nothing is padded: attention runs unmasked (SDPA's fast path)
        key_mask = None if frame_mask is None or bool(frame_mask.all()) else frame_mask
        states = [x]
        for layer in self:
            # one draw per layer from torch's global generator, and only in
            # training with layerdrop > 0: the recipes reseed it per batch, so
            # which layers drop is reproducible (and eval draws nothing)
            if not (self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop):
                x = layer(x, key_mask=key_mask, **layer_kwargs)
            states.append(x)
        return states


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
        valid = length_to_mask(samples.to(wav.device), wav.shape[1], dtype=torch.bool)
    count = valid.sum(1, keepdim=True).clamp(min=1)
    mean = (wav * valid).sum(1, keepdim=True) / count
    variance = ((wav - mean).pow(2) * valid).sum(1, keepdim=True) / count
    return torch.where(valid, (wav - mean) / torch.sqrt(variance + eps), torch.zeros_like(wav))


def init_bert_weights(module, std=0.02):
    """BERT's initialisation (fairseq's ``init_bert_params``, HF's
    ``_init_weights``) of every ``nn.Linear`` (weight N(0, std), zero bias)
    and ``nn.Embedding`` (N(0, std)) in ``module``, drawn in
    ``module.modules()`` order. LayerNorms are left as built (ones / zeros,
    HF's values), convolutions too (their inits are fairseq's own).

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(512, 512), nn.LayerNorm(512))
    >>> _ = torch.manual_seed(0)
    >>> init_bert_weights(net)
    >>> round(net[0].weight.std().item(), 3), net[0].bias.abs().sum().item()
    (0.02, 0.0)
    """
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            nn.init.normal_(sub.weight, mean=0.0, std=std)


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
    features = backbone.feature_extractor(wav, samples)
    features = scale_gradient(features, backbone.config.feature_grad_mult if backbone.training else 1.0)
    batch, frames = features.shape[:2]
    if samples is None:
        frame_mask = torch.ones(batch, frames, dtype=torch.bool, device=wav.device)
        feature_penalty = features.float().pow(2).mean()
    else:
        frame_lengths = backbone.frame_lengths(samples).clamp(min=0, max=frames)
        frame_mask = length_to_mask(frame_lengths, frames, dtype=torch.bool)
        # over the real frames only: padding never enters a loss (paper 001, Section 3.2)
        feature_penalty = features[frame_mask].float().pow(2).mean()
    return features, frame_mask, feature_penalty


def draw_channel_mask(x, channel_mask=None, channel_span_mask=None):
    """The channel mask ``[B, D]`` for the encoder input ``x`` ``[B, T, D]``
    of a backbone's forward: ``channel_mask`` as given, or one drawn by
    ``speechbrain_ext.models.masking.compute_channel_mask`` from
    ``channel_span_mask = (prob, length[, min_masks])`` (torch's global
    generator of ``x``'s device); None when neither is given."""
    if channel_span_mask is None:
        return channel_mask
    if channel_mask is not None:
        raise ValueError("give channel_mask or channel_span_mask, not both")
    return compute_channel_mask(x.shape[0], x.shape[-1], *channel_span_mask, device=x.device)


def mask_channels(x, channel_mask):
    """Fine-tuning's channel masking (fairseq ``mask_channel_prob``, HF
    ``mask_feature_prob``): the channels ``channel_mask`` ``[B, D]`` marks
    are set to zero at every frame of ``x`` ``[B, T, D]``, after the time
    mask (fairseq's default ``mask_channel_before=False``). None: ``x``."""
    if channel_mask is None:
        return x
    return x.masked_fill(channel_mask.to(x.device)[:, None, :], 0.0)


class BackboneBase(nn.Module):
    """What every backbone has around its own layers: ``config`` (a
    ``config_class`` object, or its dict), the CNN ``feature_extractor`` (built
    first: seeded initialisations depend on the order of construction),
    fairseq's initialisation and frame counting. A subclass builds its other
    modules, an ``encoder`` with a ``pos_conv_embed`` among them, after
    ``super().__init__(config)`` and then calls ``reset_parameters()``.

    Example
    -------
    >>> model = BackboneBase({"conv_layers": [(8, 10, 5), (8, 3, 2)], "num_layers": 2})
    >>> model.num_hidden_states, model.frame_lengths(torch.tensor([400, 200]))
    (3, tensor([39, 19]))
    """

    config_class = BackboneConfig

    def __init__(self, config=None):
        super().__init__()
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            config = self.config_class.from_dict(config)
        self.config = config
        if config.extractor_mode == "fbfe":
            self.feature_extractor = FilterBankFeatureExtractor(
                config.conv_layers, config.dim, config.conv_bias)
        else:
            self.feature_extractor = ConvFeatureExtractor(
                config.conv_layers, config.extractor_mode, config.conv_bias)

    def reset_parameters(self):
        """fairseq's initialisation (HF's is the same): Kaiming-normal CNN
        weights; BERT's init of the context network (``init_bert_weights``:
        N(0, 0.02) linear weights with zero biases, embeddings) and a
        positional conv of std sqrt(4 / (kernel * dim)). PyTorch's defaults
        instead shrink the signal through the unnormalised conv blocks
        (feature penalty ~1e-7 at init instead of ~1)."""
        init_conv_feature_extractor(self.feature_extractor)
        init_bert_weights(self.encoder)
        init_positional_conv(self.encoder.pos_conv_embed.conv, self.config.dim)

    @property
    def num_hidden_states(self):
        return self.config.num_layers + 1

    def frame_lengths(self, num_samples):
        """Frames (at the CNN rate) for ``num_samples`` samples (``[B]`` tensor or int)."""
        return self.feature_extractor.output_lengths(num_samples)
