"""Convolutional wave feature extractor (wav2vec2's CNN encoder).

fairseq's two normalisation modes: ``"group_norm"`` puts a GroupNorm with
one group per channel after the FIRST convolution only (wav2vec2-base);
``"layer_norm"`` puts a LayerNorm over channels in every block (large /
"stable" models). Each block is conv -> norm -> GELU (exact). No padding, so
the output length is ``floor((N - k) / s) + 1`` per layer.

Parameter names follow HF transformers (``conv_layers.{i}.conv``,
``conv_layers.{i}.layer_norm``) so checkpoints interchange without renaming.

Example
-------
>>> import torch
>>> fe = ConvFeatureExtractor([(8, 10, 5), (8, 3, 2), (8, 2, 2)])
>>> fe(torch.randn(2, 1600)).shape  # [batch, frames, channels]
torch.Size([2, 79, 8])
>>> fe.output_lengths(torch.tensor([1600, 800]))
tensor([79, 39])
"""
import torch
from torch import nn

WAV2VEC2_CONV_LAYERS = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a ``[batch, channels, time]`` tensor."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Module):
    """conv -> optional norm -> GELU on ``[batch, channels, time]``."""

    def __init__(self, in_channels, out_channels, kernel, stride, norm=None, bias=False):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_channels, out_channels, affine=True)
        elif norm == "layer":
            self.layer_norm = _ChannelLayerNorm(out_channels)
        elif norm is not None:
            raise ValueError(f"norm must be None, 'group' or 'layer', got {norm!r}")
        self.activation = nn.GELU()

    def forward(self, x):
        x = self.conv(x)
        if hasattr(self, "layer_norm"):
            if isinstance(self.layer_norm, nn.GroupNorm):
                # fairseq's Fp32GroupNorm: statistics in fp32 under autocast
                x = self.layer_norm(x.float()).to(x.dtype)
            else:
                x = self.layer_norm(x)
        return self.activation(x)


class ConvFeatureExtractor(nn.Module):
    """Stack of strided 1-D convolutions from waveform to frames.

    Arguments
    ---------
    conv_layers : list of (channels, kernel, stride)
    mode : "group_norm" | "layer_norm"
    conv_bias : bool
    """

    def __init__(self, conv_layers=WAV2VEC2_CONV_LAYERS, mode="group_norm", conv_bias=False):
        super().__init__()
        if mode not in ("group_norm", "layer_norm"):
            raise ValueError(f"extractor mode must be 'group_norm' or 'layer_norm' (or 'fbfe', the "
                             f"filter-bank front end of speechbrain_ext.models.filterbank), got {mode!r}")
        self.conv_layers = nn.ModuleList()
        in_channels = 1
        for i, (channels, kernel, stride) in enumerate(conv_layers):
            norm = "layer" if mode == "layer_norm" else ("group" if i == 0 else None)
            self.conv_layers.append(ConvBlock(in_channels, channels, kernel, stride, norm, conv_bias))
            in_channels = channels
        self.kernels_strides = [(k, s) for _, k, s in conv_layers]
        self.output_dim = in_channels

    def output_lengths(self, num_samples):
        """Frames produced for ``num_samples`` input samples (tensor or int)."""
        length = num_samples
        for kernel, stride in self.kernels_strides:
            length = torch.div(length - kernel, stride, rounding_mode="floor") + 1
        return length

    def forward(self, wav, samples=None):
        """``[batch, samples]`` -> ``[batch, frames, channels]``. ``samples``
        (valid lengths) is not used: the interface of the filter-bank front
        end, whose normalisation needs them."""
        x = wav.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x.transpose(1, 2)
