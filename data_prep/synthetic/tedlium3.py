"""Synthetic TED-LIUM release 3 (the ``legacy`` distribution).

Layout (as the real corpus)::

    TEDLIUM_release-3/
        README.synthetic
        legacy/{train,dev,test}/sph/<talk>.sph    16 kHz mono NIST SPHERE, 16-bit PCM
        legacy/{train,dev,test}/stm/<talk>.stm
            <talk> 1 <talk> <start> <end> <o,f0,male> <lower-case text>

A talk is one speaker's utterances placed one after the other with pauses
(a low noise floor in between); the STM gives each segment's start and end
(2 decimals, as TED-LIUM). Transcripts follow TED-LIUM's conventions: lower
case, clitics split off (``it 's``), one word of one segment per talk
written ``<unk>`` (still spoken), and one extra spoken segment per talk
marked ``ignore_time_segment_in_scoring``.

:func:`write_sphere` (a NIST SPHERE header written here, then
little-endian 16-bit PCM) and :func:`render_waveforms` (utterances spoken
into a scratch folder and read back, to be assembled into long
recordings) are shared with the Fisher + Switchboard and VoxPopuli
generators.
"""
import re
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from .core import Recording, rng_for, summarise, write_text
from .ids import pick, unique_values
from .text import GIVEN_NAMES, SURNAMES, SentenceGenerator
from .voices import SAMPLE_RATE, make_speakers

SPLITS = ("train", "dev", "test")
# talks per split; segments: (min, max) utterances per talk.
# Lists, not tuples: a preset must equal its JSON copy in the corpus marker.
SIZES = {
    "tiny": {"talks": {"train": 2, "dev": 1, "test": 1}, "segments": [2, 2]},
    "mini": {"talks": {"train": 4, "dev": 1, "test": 1}, "segments": [4, 5]},
}
CLITICS = (("it's", "it 's"), ("that's", "that 's"), ("we're", "we 're"),
           ("i've", "i 've"), ("you'll", "you 'll"), ("i'm", "i 'm"))
SCRATCH = "_scratch"
README = """\
Synthetic stand-in for TED-LIUM release 3 (legacy distribution), spoken by
espeak-ng; same folder layout and STM format as the real corpus.
"""


def sphere_header(fields):
    """A 1024-byte NIST SPHERE header of ``fields`` (``[(name, int or str)]``).

    >>> head = sphere_header([("channel_count", 1), ("sample_coding", "pcm")])
    >>> head[:16], len(head)
    (b'NIST_1A\\n   1024\\n', 1024)
    """
    lines = ["NIST_1A", "   1024"]
    for name, value in fields:
        if isinstance(value, (int, np.integer)):
            lines.append(f"{name} -i {int(value)}")
        else:
            lines.append(f"{name} -s{len(str(value))} {value}")
    lines.append("end_head")
    text = ("\n".join(lines) + "\n").encode("ascii")
    if len(text) > 1024:
        raise ValueError("SPHERE header longer than 1024 bytes")
    return text + b" " * (1024 - len(text))


def write_sphere(path, samples, sample_rate, extra=()):
    """Write float ``samples`` (``[n]`` or ``[n, channels]``, in [-1, 1]) as an
    uncompressed NIST SPHERE file: 16-bit little-endian PCM, interleaved."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2")
    fields = list(extra) + [
        ("channel_count", pcm.shape[1]), ("sample_count", pcm.shape[0]),
        ("sample_rate", int(sample_rate)), ("sample_n_bytes", 2),
        ("sample_byte_format", "01"), ("sample_sig_bits", 16), ("sample_coding", "pcm")]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sphere_header(fields) + pcm.tobytes())


def render_waveforms(renderer, recordings, root, seed):
    """Speak ``recordings`` (paths under ``root/_scratch``) and return
    ``{path: float32 waveform at 16 kHz}``; the scratch files are removed."""
    renderer.render(recordings, root, seed)
    waves = {}
    for rec in recordings:
        waves[rec.path], rate = sf.read(str(Path(root) / rec.path), dtype="float32")
        assert rate == SAMPLE_RATE
    shutil.rmtree(Path(root) / SCRATCH, ignore_errors=True)
    return waves


def noise_floor(rng, samples, level_db=-58.0, channels=None):
    """Low white noise (``[samples]`` or ``[samples, channels]``)."""
    shape = (samples,) if channels is None else (samples, channels)
    return (rng.standard_normal(shape) * 10 ** (level_db / 20)).astype(np.float32)


def _talk_names(rng, count, taken):
    def make(r):
        suffix = pick(r, ["X", "G", "", "S", "U"])
        return f"{pick(r, GIVEN_NAMES).capitalize()}{pick(r, SURNAMES).capitalize()}" \
               f"_{int(r.integers(2006, 2018))}{suffix}"

    return unique_values(rng, count, make, taken)


def _segment_texts(rng, gen, index, unk):
    """``(spoken, transcript)`` of one segment: TED-LIUM's lower case with
    split clitics; ``unk`` writes one word as ``<unk>``."""
    words = gen.sentence(n_words=int(rng.integers(5, 11))).lower().split()
    spoken, written = list(words), list(words)
    if rng.random() < 0.5 or index == 0:
        said, split = pick(rng, CLITICS)
        spoken.insert(0, said)
        written.insert(0, split)
    if unk:
        position = int(rng.integers(1, len(written)))
        written[position] = "<unk>"
    # TED-LIUM's tokenisation splits every clitic off its word
    return " ".join(spoken), re.sub(r"(\w)'(s|re|ve|m|ll|d)\b", r"\1 '\2", " ".join(written))


def build(root, seed, size, renderer):
    """Write ``TEDLIUM_release-3/`` into ``root`` (the corpus folder)."""
    root = Path(root)
    taken, recordings, talks = set(), [], []
    for split in SPLITS:
        rng = rng_for(seed, "tedlium3", "talks", split)
        count = size["talks"][split]
        speakers = make_speakers(rng, count, prefix=f"ted_{split}_", snr_db=(25.0, 40.0))
        for spk, talk in zip(speakers, _talk_names(rng, count, taken)):
            trng = rng_for(seed, "tedlium3", "talk", talk)
            gen = SentenceGenerator(trng)
            n = int(trng.integers(size["segments"][0], size["segments"][1] + 1))
            segments = []
            for i in range(n + 1):  # + one segment ignored in scoring
                ignored = i == n // 2 + 1 if n > 1 else i == n
                spoken, written = _segment_texts(trng, gen, i, unk=(i == 1 and not ignored))
                path = f"{SCRATCH}/{talk}/{i:03d}.wav"
                recordings.append(Recording(path=path, text=spoken, speaker=spk))
                segments.append((path, "ignore_time_segment_in_scoring" if ignored else written))
            talks.append((split, talk, spk, segments, trng))
    waves = render_waveforms(renderer, recordings, root, seed)
    durations, speakers = {}, []
    for split, talk, spk, segments, trng in talks:
        t = float(trng.uniform(0.8, 1.5))
        placed, lines = [], []
        gender = "female" if spk.sex == "F" else "male"
        for path, written in segments:
            wav = waves[path]
            start = round(t, 2)
            first = int(round(start * SAMPLE_RATE))
            end = round((first + len(wav)) / SAMPLE_RATE, 2)
            placed.append((first, wav))
            lines.append(f"{talk} 1 {talk} {start:.2f} {end:.2f} <o,f0,{gender}> {written}")
            if written != "ignore_time_segment_in_scoring":
                durations[f"{talk}-{start:.2f}"] = end - start
                speakers.append(talk)
            t = end + float(trng.uniform(0.3, 1.2))
        total = int(round((t + float(trng.uniform(0.3, 0.8))) * SAMPLE_RATE))
        audio = noise_floor(trng, total)
        for first, wav in placed:
            audio[first:first + len(wav)] += wav
        folder = root / "legacy" / split
        write_sphere(folder / "sph" / f"{talk}.sph", audio, SAMPLE_RATE,
                     extra=[("database_id", "TEDLIUM_release-3")])
        write_text(folder / "stm" / f"{talk}.stm", lines)
    write_text(root / "README.synthetic", README.splitlines())
    stats = summarise(durations, speakers)
    stats["talks"] = {split: sum(1 for t in talks if t[0] == split) for split in SPLITS}
    return stats
