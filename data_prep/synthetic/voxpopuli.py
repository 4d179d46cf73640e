"""Synthetic VoxPopuli, transcribed English ASR data.

Layout (as ``voxpopuli.get_asr_data --root ROOT --lang en`` writes)::

    voxpopuli/transcribed_data/en/<year>/<id>.ogg     16 kHz mono Ogg Vorbis, one clip each
    voxpopuli/transcribed_data/en/asr_{train,dev,test}.tsv
        id raw_text normalized_text speaker_id split gender is_gold_transcript accent

``id`` is ``<date>-0900-PLENARY-<item>-en_<date>-<hh:mm:ss>_<n>``: clips
``_0``, ``_1`` ... of one speech (one speaker's turn); speakers are
numeric ids, disjoint across splits. ``raw_text`` is capitalised with
punctuation, ``normalized_text`` lower case without punctuation (hyphens of
compounds kept); the speaker says the normalised words.
"""
from pathlib import Path

import soundfile as sf

from .core import Recording, rng_for, summarise, write_text
from .ids import csv_lines, pick, unique_values
from .tedlium3 import SCRATCH, render_waveforms
from .text import SentenceGenerator
from .voices import SAMPLE_RATE, make_speakers

SPLITS = ("train", "dev", "test")
# speeches per split (each by one of the split's speakers); clips: (min, max) per speech
SIZES = {
    "tiny": {"speakers": {"train": 2, "dev": 1, "test": 1},
             "speeches": {"train": 2, "dev": 1, "test": 1}, "clips": [2, 2]},
    "mini": {"speakers": {"train": 4, "dev": 2, "test": 2},
             "speeches": {"train": 6, "dev": 2, "test": 2}, "clips": [3, 4]},
}
HEADER = ["id", "raw_text", "normalized_text", "speaker_id", "split", "gender",
          "is_gold_transcript", "accent"]
COMPOUNDS = ("well-known", "long-term", "so-called", "co-operation", "short-term")


def _texts(rng, gen):
    """``(raw_text, normalized_text, spoken)`` of one clip."""
    words = gen.sentence(n_words=int(rng.integers(6, 12))).lower().split()
    if rng.random() < 0.3:
        words.insert(int(rng.integers(1, len(words))), pick(rng, COMPOUNDS))
    normalized = " ".join(words)
    raw = normalized[0].upper() + normalized[1:]
    cut = int(rng.integers(2, max(3, len(words) - 1)))
    raw = " ".join(raw.split()[:cut]) + ", " + " ".join(raw.split()[cut:]) + "."
    return raw, normalized, normalized.replace("-", " ")


def build(root, seed, size, renderer):
    """Write ``voxpopuli/`` into ``root`` (the corpus folder)."""
    root = Path(root)
    lang = root / "transcribed_data" / "en"
    taken_ids, taken_speeches = set(), set()
    recordings, rows = [], {}
    for split in SPLITS:
        rng = rng_for(seed, "voxpopuli", "speakers", split)
        speakers = make_speakers(rng, size["speakers"][split], snr_db=(22.0, 40.0))
        ids = unique_values(rng, len(speakers), lambda r: str(int(r.integers(1000, 200000))),
                            taken_ids)
        rows[split] = []
        for k in range(size["speeches"][split]):
            spk, spk_id = speakers[k % len(speakers)], ids[k % len(speakers)]

            def make(r):
                date = (f"{int(r.integers(2014, 2021))}{int(r.integers(1, 13)):02d}"
                        f"{int(r.integers(1, 29)):02d}")
                clock = (f"{int(r.integers(9, 20)):02d}:{int(r.integers(60)):02d}:"
                         f"{int(r.integers(60)):02d}")
                return f"{date}-0900-PLENARY-{int(r.integers(2, 25))}-en_{date}-{clock}"

            speech = unique_values(rng, 1, make, taken_speeches)[0]
            srng = rng_for(seed, "voxpopuli", "speech", speech)
            gen = SentenceGenerator(srng)
            for n in range(int(srng.integers(size["clips"][0], size["clips"][1] + 1))):
                clip = f"{speech}_{n}"
                raw, normalized, spoken = _texts(srng, gen)
                recordings.append(Recording(path=f"{SCRATCH}/{clip}.wav", text=spoken,
                                            speaker=spk))
                rows[split].append([clip, raw, normalized, spk_id, split,
                                    "female" if spk.sex == "F" else "male", "True", "None"])
    waves = render_waveforms(renderer, recordings, root, seed)
    durations, speakers = {}, []
    for split in SPLITS:
        for row in rows[split]:
            wav = waves[f"{SCRATCH}/{row[0]}.wav"]
            path = lang / row[0][:4] / f"{row[0]}.ogg"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), wav, SAMPLE_RATE, format="OGG", subtype="VORBIS")
            durations[row[0]] = len(wav) / SAMPLE_RATE
            speakers.append(row[3])
        write_text(lang / f"asr_{split}.tsv", csv_lines([HEADER] + rows[split], delimiter="\t"))
    stats = summarise(durations, speakers)
    stats["splits"] = {split: len(r) for split, r in rows.items()}
    return stats
