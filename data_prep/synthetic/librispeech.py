"""Synthetic LibriSpeech and Libri-light limited-resource subsets.

Layout (as the real corpora):
``LibriSpeech/{train-clean-100,dev-clean,test-clean}/SPK/CHAPTER/SPK-CHAPTER-UTT.flac``
with ``SPK-CHAPTER.trans.txt`` (upper-case transcripts), ``SPEAKERS.TXT``,
``CHAPTERS.TXT``, ``librispeech-lexicon.txt`` and the frame-level phone
alignments of every utterance in ``LibriSpeech/LibriSpeech100_labels_split/``
(the public CPC layout, see ``alignments``); and
``librispeech_finetuning/{1h/{0..5},9h}/{clean,other}/SPK/CHAPTER/...``
(six 10-minute folds make 1 h; 1 h + 9 h make 10 h), scaled down.
"""
from collections import defaultdict
from dataclasses import replace

import numpy as np

from . import alignments
from .core import Recording, rng_for, summarise, write_text
from .ids import unique_values
from .lexicon import write_lexicon
from .text import SentenceGenerator, vocabulary
from .voices import SAMPLE_RATE, make_speakers

MAX_SECONDS = 25.0

# Size presets. "mini" is the default corpus of `make demo` and the tests;
# "tiny" is for quick determinism checks. --hours-librispeech rescales
# train-clean-100 (see scale_librispeech).
SIZES = {
    "tiny": {"ls_train_speakers": 4, "ls_train_chapters": 1, "ls_train_utts": 3,
             "ls_eval_speakers": 2, "ls_eval_utts": 2, "ll_fold_utts": 2},
    # One 20-utterance chapter (~4 min) per speaker: chapters shorter than
    # L (L + 1) s (4 min at 15 s) cannot all be cut into pieces within 1 s of
    # each other without dropping a remainder (see data_prep.length_splits).
    "mini": {"ls_train_speakers": 20, "ls_train_chapters": 1, "ls_train_utts": 20,
             "ls_eval_speakers": 8, "ls_eval_utts": 6, "ll_fold_utts": 4},
}
MEAN_SECONDS = 12.0  # mean of draw_durations, used to size --hours-librispeech


def scale_librispeech(size, hours):
    """Return a copy of ``size`` whose train-clean-100 holds about ``hours``
    hours: up to 251 speakers (as the real subset), chapters of at least 20
    utterances (~4 min), 2 chapters a speaker once there is enough audio."""
    utts = max(1, int(round(hours * 3600 / MEAN_SECONDS)))
    speakers = int(min(251, max(size["ls_train_speakers"], round(utts / 40))))
    chapters = 2 if utts >= speakers * 40 else 1
    per_chapter = max(1, int(round(utts / (speakers * chapters))))
    return {**size, "ls_train_speakers": speakers, "ls_train_chapters": chapters,
            "ls_train_utts": per_chapter}


def draw_durations(rng, count):
    """Utterance lengths in seconds: mostly LibriSpeech-like (mean ~12 s),
    some short ones, always within [1, 25] s."""
    long_form = 1.0 + 24.0 * rng.beta(2.0, 2.2, size=count)
    short = rng.uniform(1.0, 4.0, size=count)
    return np.where(rng.random(count) < 0.12, short, long_form)


def _plan_subset(seed, subset_dir, speakers, chapters_per_speaker, utts_per_chapter,
                 taken_ids, tag):
    """Recordings for one subset; returns (recordings, chapter rows)."""
    rng = rng_for(seed, "librispeech", tag)
    text_rng = rng_for(seed, "librispeech-text", tag)
    sentences = SentenceGenerator(text_rng)
    recordings, chapters = [], []
    for spk in speakers:
        for chapter in unique_values(rng, chapters_per_speaker,
                                     lambda r: int(r.integers(1000, 300000)), taken_ids):
            durations = draw_durations(rng, utts_per_chapter)
            for utt, seconds in enumerate(durations):
                n_words = max(1, int(round(seconds * spk.rate / 60)))
                uid = f"{spk.speaker_id}-{chapter}-{utt:04d}"
                recordings.append(Recording(
                    path=f"{subset_dir}/{spk.speaker_id}/{chapter}/{uid}.flac",
                    text=sentences.sentence(n_words),
                    speaker=spk, max_seconds=MAX_SECONDS - 0.6,
                ))
            chapters.append((chapter, spk.speaker_id, subset_dir))
    return recordings, chapters


def _write_transcripts(root, recordings):
    by_chapter = defaultdict(list)
    for rec in recordings:
        folder = rec.path.rsplit("/", 1)[0]
        uid = rec.path.rsplit("/", 1)[1][: -len(".flac")]
        by_chapter[folder].append(f"{uid} {rec.text}")
    for folder, lines in by_chapter.items():
        spk, chapter = folder.split("/")[-2:]
        write_text(root / folder / f"{spk}-{chapter}.trans.txt", sorted(lines))


def _speakers(seed, tag, count, taken_ids, **kwargs):
    rng = rng_for(seed, "librispeech-speakers", tag)
    speakers = make_speakers(rng, count, **kwargs)
    ids = unique_values(rng, count, lambda r: int(r.integers(10, 9999)), taken_ids)
    return [replace(s, speaker_id=str(i)) for s, i in zip(speakers, ids)]


def utterance_id(path):
    """``"train-clean-100/19/198/19-198-0001.flac"`` -> ``"19-198-0001"``."""
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def plan_librispeech(seed, size):
    """The recordings of ``LibriSpeech/`` for a preset: returns
    ``(recordings, chapter rows, speaker rows)``."""
    taken_speakers, taken_chapters = set(), set()
    plan = {
        "train-clean-100": (size["ls_train_speakers"], size["ls_train_chapters"],
                            size["ls_train_utts"]),
        "dev-clean": (size["ls_eval_speakers"], 1, size["ls_eval_utts"]),
        "test-clean": (size["ls_eval_speakers"], 1, size["ls_eval_utts"]),
    }
    recordings, chapter_rows, speaker_rows = [], [], []
    for subset, (n_spk, n_ch, n_utt) in plan.items():
        speakers = _speakers(seed, subset, n_spk, taken_speakers)
        recs, chapters = _plan_subset(seed, subset, speakers, n_ch, n_utt,
                                      taken_chapters, subset)
        recordings += recs
        chapter_rows += chapters
        speaker_rows += [(s.speaker_id, s.sex, subset) for s in speakers]
    return recordings, chapter_rows, speaker_rows


def build_librispeech(root, seed, size, renderer):
    """Write ``LibriSpeech/`` into ``root``. ``size`` is a preset dict."""
    recordings, chapter_rows, speaker_rows = plan_librispeech(seed, size)
    durations, labels = {}, alignments.PhoneLabels()
    for rec, seconds, events in renderer.iter_render(recordings, root, seed, events=True):
        durations[rec.path] = seconds
        samples = int(round(seconds * SAMPLE_RATE))
        labels.add(utterance_id(rec.path), alignments.frame_labels(events, samples))
    train, test = alignments.split_by_speaker(
        [utterance_id(r.path) for r in recordings if r.path.startswith("train-clean-100/")],
        seed)
    labels.write(root / alignments.LABELS_FOLDER, train, test)
    _write_transcripts(root, recordings)
    minutes = defaultdict(float)
    for rec in recordings:
        minutes[rec.speaker.speaker_id] += durations[rec.path] / 60
    write_text(root / "SPEAKERS.TXT", [
        "; Synthetic LibriSpeech speakers (espeak-ng voices)",
        ";ID  |SEX| SUBSET           |MINUTES| NAME",
    ] + [f"{sid:<5}| {sex} | {subset:<17}| {minutes[sid]:5.2f} | Synthetic Reader {sid}"
         for sid, sex, subset in speaker_rows])
    chapter_minutes = defaultdict(float)
    for rec in recordings:
        chapter_minutes[rec.path.split("/")[2]] += durations[rec.path] / 60
    write_text(root / "CHAPTERS.TXT", [
        ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE",
    ] + [f"{ch:<7}| {spk:<5}| {chapter_minutes[str(ch)]:5.2f} | {subset:<17}| 0 | 0 | "
         f"Chapter {ch} | Synthetic Book" for ch, spk, subset in chapter_rows])
    write_lexicon(root / "librispeech-lexicon.txt", vocabulary())
    return summarise(durations, [r.speaker.speaker_id for r in recordings])


def build_librilight(root, seed, size, renderer):
    """Write ``librispeech_finetuning/`` (Libri-light limited) into ``root``."""
    taken_speakers, taken_chapters = set(range(0, 10)), set()
    recordings = []
    folds = [f"1h/{k}" for k in range(6)] + ["9h"]
    for fold in folds:
        n_utts = size["ll_fold_utts"] * (9 if fold == "9h" else 1)
        for quality in ("clean", "other"):
            tag = f"{fold}/{quality}"
            snr = (8.0, 15.0) if quality == "other" else (20.0, 35.0)
            speakers = _speakers(seed, "ll" + tag, 2, taken_speakers, snr_db=snr)
            per_speaker = max(1, n_utts // 2)
            recs, _ = _plan_subset(seed, tag, speakers, 1, per_speaker,
                                   taken_chapters, "ll" + tag)
            recordings += recs
    durations = renderer.render(recordings, root, seed)
    _write_transcripts(root, recordings)
    return summarise(durations, [r.speaker.speaker_id for r in recordings])
