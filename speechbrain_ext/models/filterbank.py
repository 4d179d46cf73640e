"""The filter-bank feature extractor (FBFE) of paper 002's Table 6, row 9:
80-d log-mel filter banks, "two 2D convolutional layers and 160 channels
followed by a linear projection layer" (FBFE-c160), in place of the wave
feature extractor (WFE). A backbone selects it with ``extractor_mode:
"fbfe"``; its ``conv_layers`` are then the 2D convolutions ``(channels,
kernel, stride)`` (``fbfe_layers``), e.g. the zoo's ``sew_tiny_fbfe``.

Pipeline, on ``[batch, samples]`` at 16 kHz:

1. SpeechBrain's log-mel filter banks (``speechbrain.processing.features``
   ``STFT`` / ``spectral_magnitude`` / ``Filterbank``, the pieces of
   ``speechbrain.lobes.features.Fbank`` without its deltas buffer): 25 ms
   windows, 10 ms hop, centred frames (``samples // 160 + 1``), 80 mels, in
   fp32 whatever the autocast;
2. per-utterance mean / variance normalisation of each mel bin over the
   utterance's own frames (SpeechBrain's ``InputNormalization``,
   ``norm_type="sentence"``; padded frames set to 0). Unnormalised log-mels
   (dB, tens in magnitude) would give a feature penalty hundreds of times
   the WFE's;
3. ``Conv2d`` blocks over (time, mel), no padding, each followed by ReLU
   (asappresearch/sew's ``conv_act_type`` default; the paper names no
   activation);
4. the channels x remaining mel bins of each frame flattened and projected
   by a ``Linear`` to ``output_dim`` (the model width: as asappresearch/sew's
   ``conv_flatten_dim`` default, so SEW needs no further projection).

Strides: paper 002's WFE has a 320-sample (20 ms) frame step, and the
context network, masking and squeeze all assume it. A 10 ms filter-bank hop
therefore needs a total time stride of 2: one conv of stride 2 and one of
stride 1. ``fbfe_layers`` takes stride 1 first, then 2: with 80 mels and no
padding that leaves 38 mel bins (80 -> 78 -> 38) and a 42.21 M SEW-tiny
(Table 6 prints 42.2); stride 2 first leaves 37 (42.13 M), two strides of 2
give 40 ms frames and 19 bins (40.65 M), padding 1 gives 40 bins (42.37 M).
The paper's count thus picks (1, 2) without padding. Frames: for 16 000
samples, 101 filter-bank frames -> 99 -> 49, as the WFE's 49.

Example
-------
>>> import torch
>>> fe = FilterBankFeatureExtractor(fbfe_layers(8), output_dim=16)
>>> fe(torch.randn(2, 16000)).shape  # [batch, frames, output_dim]
torch.Size([2, 49, 16])
>>> fe.output_lengths(torch.tensor([16000, 8000])), int(fe.output_lengths(16000))
(tensor([49, 24]), 49)
"""
import torch
from speechbrain.processing.features import STFT, Filterbank, InputNormalization, spectral_magnitude
from torch import nn

SAMPLE_RATE = 16000
NUM_MELS = 80  # paper 002: 80-D filter bank features
HOP_MS, WIN_MS = 10, 25  # the usual ASR filter banks (asappresearch/sew's kaldi fbank too)


def fbfe_layers(channels=160):
    """FBFE-c``channels``: two 3x3 ``Conv2d`` layers ``(channels, kernel,
    stride)``, strides 1 then 2 (see the module docstring)."""
    return [(channels, 3, 1), (channels, 3, 2)]


class FilterBankBlock(nn.Module):
    """``Conv2d`` -> ReLU on ``[batch, channels, time, mel]``."""

    def __init__(self, in_channels, out_channels, kernel, stride, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        self.activation = nn.ReLU()

    def forward(self, x):
        return self.activation(self.conv(x))


class FilterBankFeatureExtractor(nn.Module):
    """Log-mel filter banks, 2D convolutions and a linear projection: from
    waveforms to frames, with the interface of ``ConvFeatureExtractor``
    (``forward``, ``output_lengths``, ``output_dim``, ``conv_layers`` of
    blocks with a ``conv``: the backbones' Kaiming-normal init applies).

    Arguments
    ---------
    conv_layers : list of (channels, kernel, stride)
        Square kernels and strides over (time, mel); ``fbfe_layers(160)``
        is paper 002's FBFE-c160.
    output_dim : int
        Width of the projected frames.
    conv_bias : bool
    num_mels, sample_rate, hop_ms, win_ms : the filter banks.
    """

    def __init__(self, conv_layers, output_dim, conv_bias=True, num_mels=NUM_MELS,
                 sample_rate=SAMPLE_RATE, hop_ms=HOP_MS, win_ms=WIN_MS):
        super().__init__()
        if not conv_layers:
            raise ValueError("the filter-bank front end needs at least one conv layer")
        self.stft = STFT(sample_rate=sample_rate, win_length=win_ms, hop_length=hop_ms,
                         n_fft=round(sample_rate * win_ms / 1000))
        self.filterbank = Filterbank(n_mels=num_mels, sample_rate=sample_rate,
                                     n_fft=self.stft.n_fft, f_max=sample_rate // 2)
        self.normalize = InputNormalization(norm_type="sentence")
        self.hop_samples = self.stft.hop_length
        self.conv_layers = nn.ModuleList()
        in_channels, mels = 1, num_mels
        for channels, kernel, stride in conv_layers:
            self.conv_layers.append(FilterBankBlock(in_channels, channels, kernel, stride, conv_bias))
            in_channels, mels = channels, (mels - kernel) // stride + 1
        if mels < 1:
            raise ValueError(f"conv layers {conv_layers} leave no mel bins of {num_mels}")
        self.kernels_strides = [(k, s) for _, k, s in conv_layers]
        self.projection = nn.Linear(in_channels * mels, output_dim)
        self.output_dim = output_dim

    def filterbank_frames(self, num_samples):
        """Filter-bank frames (centred STFT) of ``num_samples`` samples."""
        return num_samples // self.hop_samples + 1

    def output_lengths(self, num_samples):
        """Frames produced for ``num_samples`` input samples (tensor or int)."""
        length = self.filterbank_frames(num_samples)
        for kernel, stride in self.kernels_strides:
            length = torch.div(length - kernel, stride, rounding_mode="floor") + 1
        return length

    def log_mels(self, wav, samples=None):
        """``[batch, samples]`` -> normalised log-mel filter banks ``[batch,
        frames, mels]`` (fp32); ``samples`` ``[batch]``: the valid lengths
        (None: all valid), whose frames alone give the statistics."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            feats = self.filterbank(spectral_magnitude(self.stft(wav.float())))
            frames = feats.shape[1]
            if samples is None:
                return self.normalize(feats)
            valid = self.filterbank_frames(samples.to(feats.device)).clamp(min=1, max=frames)
            feats = self.normalize(feats, valid.float() / frames)
            mask = torch.arange(frames, device=feats.device)[None] < valid[:, None]
            return feats.masked_fill(~mask[..., None], 0.0)

    def forward(self, wav, samples=None):
        """``[batch, samples]`` -> ``[batch, frames, output_dim]``."""
        x = self.log_mels(wav, samples).unsqueeze(1)  # [batch, 1, time, mel]
        for block in self.conv_layers:
            x = block(x)
        batch, channels, frames, mels = x.shape
        return self.projection(x.permute(0, 2, 1, 3).reshape(batch, frames, channels * mels))
