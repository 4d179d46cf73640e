"""Pieces every backbone shares: the config base (``to_dict`` /
``from_dict``), the output record, waveform normalisation, the CNN front
end's forward (``cnn_features``: normalise, CNN, frame mask, gradient
scaling) and the fairseq initialisations of the CNN and positional conv.

Example
-------
>>> import torch
>>> frame_mask_from_lengths(torch.tensor([3, 1]), 4)
tensor([[ True,  True,  True, False],
        [ True, False, False, False]])
"""
import math
from dataclasses import asdict, dataclass, fields
from typing import List, Optional

import torch
from torch import nn


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
