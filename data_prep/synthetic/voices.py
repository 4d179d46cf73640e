"""Synthetic speakers: stable voice profiles plus a per-speaker channel.

A speaker is an espeak voice variant with its own pitch, pitch range and
speaking rate, heard through its own channel (spectral tilt, gain, optional
reverberation and a noise floor). Every utterance jitters rate and pitch a
little, so speaker identity is learnable but not a constant fingerprint.

Example
-------
>>> import numpy as np
>>> spk = make_speakers(np.random.default_rng(0), 2, prefix="s")
>>> spk[0].speaker_id, spk[0].sex in ("F", "M")
('s0', True)
>>> wav = apply_channel(np.zeros(1600, np.float32) + 0.1, spk[0].channel,
...                     np.random.default_rng(1))
>>> wav.shape, bool(np.abs(wav).max() <= 1.0)
((1600,), True)
"""
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.signal import fftconvolve, lfilter

SAMPLE_RATE = 16000
# espeak voice variants. Those with "breath" noise (f2, f3, f5, Alicia) are
# left out: their noise is not reproducible, and corpora must be.
MALE_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
FEMALE_VARIANTS = ["f1", "f4", "Annie", "belinda", "linda", "aunty", "steph", "anika", "Andrea"]


@dataclass(frozen=True)
class Channel:
    """Recording conditions. ``tilt`` in (-1, 1) is a first-order
    pre-emphasis (>0) or low-pass (<0) coefficient; ``rt60`` seconds of
    reverberation (0 = none); ``snr_db`` of an additive noise floor
    (None = clean); ``level_db`` the peak level in dBFS."""

    tilt: float = 0.0
    rt60: float = 0.0
    snr_db: float = None
    level_db: float = -6.0
    rir_seed: int = 0


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker; ``language`` is an espeak language (``en-us``,
    ``cmn``) and ``variant`` an espeak voice variant (``f3``, ``m1``)."""

    speaker_id: str
    sex: str
    language: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    channel: Channel = field(default_factory=Channel)

    @property
    def voice(self):
        return f"{self.language}+{self.variant}"


def random_channel(rng, clean=False, snr_db=(18.0, 35.0), rt60=(0.0, 0.35)):
    """Draw a channel; ``clean=True`` gives a studio-like channel."""
    if clean:
        return Channel(tilt=0.0, rt60=0.0, snr_db=None, level_db=-3.0)
    has_reverb = rng.random() < 0.5
    return Channel(
        tilt=float(rng.uniform(-0.5, 0.6)),
        rt60=float(rng.uniform(*rt60)) if has_reverb else 0.0,
        snr_db=float(rng.uniform(*snr_db)),
        level_db=float(rng.uniform(-12.0, -2.0)),
        rir_seed=int(rng.integers(2**31)),
    )


def make_speakers(rng, count, prefix="spk", language="en-us", sexes=None,
                  clean=False, snr_db=(18.0, 35.0)):
    """Draw ``count`` speakers. ``sexes`` optionally fixes each one's sex
    (``"F"``/``"M"``); otherwise they alternate F, M, F, ..."""
    speakers = []
    for i in range(count):
        sex = sexes[i] if sexes is not None else ("F" if i % 2 == 0 else "M")
        variants = FEMALE_VARIANTS if sex == "F" else MALE_VARIANTS
        base_pitch = 55 if sex == "F" else 35
        speakers.append(Speaker(
            speaker_id=f"{prefix}{i}",
            sex=sex,
            language=language,
            variant=variants[int(rng.integers(len(variants)))],
            pitch=int(np.clip(base_pitch + rng.normal(0, 10), 5, 95)),
            pitch_range=int(rng.uniform(20, 90)),
            rate=int(rng.uniform(140, 200)),
            channel=random_channel(rng, clean=clean, snr_db=snr_db),
        ))
    return speakers


def with_channel(speaker, channel):
    """The same voice heard through another channel (e.g. another video)."""
    return replace(speaker, channel=channel)


def _room_impulse_response(rt60, seed):
    rng = np.random.default_rng(seed)
    n = max(int(rt60 * SAMPLE_RATE), 16)
    t = np.arange(n) / SAMPLE_RATE
    # Energy decays by 60 dB over rt60: amplitude envelope 10^(-3 t / rt60).
    tail = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60) * 0.3
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def apply_channel(wav, channel, rng):
    """Pass a ``[samples]`` waveform through ``channel``; ``rng`` draws the
    noise of this one recording. Returns float32 in [-1, 1]."""
    out = np.asarray(wav, dtype=np.float64)
    if channel.tilt:
        out = lfilter([1.0, -channel.tilt], [1.0], out)
    if channel.rt60 > 0:
        rir = _room_impulse_response(channel.rt60, channel.rir_seed)
        out = fftconvolve(out, rir)[: len(out)]
    if channel.snr_db is not None:
        power = np.mean(out**2) + 1e-12
        noise = rng.standard_normal(len(out))
        noise = lfilter([1.0], [1.0, -0.7], noise)  # a slightly pink floor
        noise *= np.sqrt(power / (np.mean(noise**2) + 1e-12)) * 10 ** (-channel.snr_db / 20)
        out = out + noise
    peak = np.max(np.abs(out)) + 1e-9
    out = out / peak * 10 ** (channel.level_db / 20)
    return out.astype(np.float32)
