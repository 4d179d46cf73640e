"""Frame-level phone alignments from espeak's phoneme events, written in
the layout of the public LibriSpeech-100 alignments used for linear phone
classification (CPC; the format, its reader and writer:
``speechbrain_ext.io.alignments``) into ``LibriSpeech/LibriSpeech100_labels_split/``.

What this generator puts there: one label per 10 ms frame, the phone active
at the frame's centre (frame ``k`` covers samples ``[160 k, 160 k + 160)``
at 16 kHz and is labelled at ``160 k + 80``; an utterance of ``N`` samples
has ``N // 160`` frames); train-clean-100 split by speaker
(``split_by_speaker``); and a ``phones.txt`` (``SIL`` first, the rest
sorted), which the public release lacks.

Phones are espeak-ng's mnemonics without the stress and syllable marks
``' , % =`` (``"'oU"`` -> ``oU``); ``SIL`` is the silence before the first
phoneme, espeak's pause phonemes (``_``, ``_:``, ``_!``) and everything after
a clause's end. espeak inserts a short pause before a word's first phoneme
(a stop's closure, for one); after a phone it belongs to that first
phoneme, so word starts are phone starts, and after silence it stays
``SIL``.

Example
-------
>>> events = [("sentence", "", 0), ("word", "HI", 0), ("phoneme", "h", 400),
...           ("phoneme", "'aI", 1200), ("phoneme", "_:", 3000),
...           ("end", "", 3300)]
>>> " ".join(frame_labels(events, 3600))  # 22 frames
'SIL SIL h h h h h aI aI aI aI aI aI aI aI aI aI aI aI SIL SIL SIL'
>>> import tempfile
>>> from speechbrain_ext.io.alignments import read_alignments
>>> folder = tempfile.mkdtemp()
>>> labels = PhoneLabels()
>>> labels.add("1-2-0000", frame_labels(events, 3600))
>>> labels.add("3-4-0000", frame_labels(events, 1600))
>>> labels.write(folder, train_ids=["1-2-0000"], test_ids=["3-4-0000"])
>>> aligned = read_alignments(folder)
>>> aligned.phones, aligned.labels["1-2-0000"][:8].tolist()
(['SIL', 'aI', 'h'], [0, 0, 2, 2, 2, 2, 2, 1])
"""
import numpy as np

from speechbrain_ext.io.alignments import FRAME_SAMPLES, write_alignments
from speechbrain_ext.io.alignments import LABELS_FOLDER  # noqa: F401 (librispeech.py's folder name)

from .core import rng_for

SIL = "SIL"
STRESS_MARKS = "',%="
HELD_OUT_FRACTION = 0.25
_STRIP = str.maketrans("", "", STRESS_MARKS)


def normalise_phone(name):
    """Label of an espeak phoneme mnemonic.

    >>> normalise_phone("'oU"), normalise_phone(",I2"), normalise_phone("_:")
    ('oU', 'I2', 'SIL')
    """
    name = name.translate(_STRIP)
    return SIL if not name or name.startswith("_") else name


def phone_boundaries(events, n_samples):
    """``[(start, phone)]`` with non-decreasing starts, the first at 0, from
    ``(kind, name, sample)`` events (``espeak.EspeakEngine.synthesize`` with
    ``return_events=True``, shifted to the utterance's samples). A boundary
    may be followed by another at the same sample (a zero-length phone)."""
    bounds = [(0, SIL)]
    word_start = None  # a word that began while a phone was active
    for kind, name, sample in events:
        sample = min(max(int(sample), bounds[-1][0]), n_samples)
        if kind == "phoneme":
            start = sample if word_start is None else word_start
            bounds.append((start, normalise_phone(name)))
            word_start = None
        elif kind == "word":
            # The word's pause goes to its first phoneme unless silence is
            # active (or the word starts where the current phone starts:
            # espeak marks a vowel after a nasal or liquid late).
            if bounds[-1][1] != SIL and sample > bounds[-1][0]:
                word_start = sample
        elif kind == "end":
            bounds.append((sample, SIL))
            word_start = None
    return bounds


def phone_segments(events, n_samples):
    """``[(phone, start, end)]`` covering ``[0, n_samples)`` without gaps,
    empty segments dropped and equal neighbours merged.

    >>> phone_segments([("phoneme", "h", 10), ("phoneme", "'i:", 50),
    ...                 ("end", "", 90)], 100)
    [('SIL', 0, 10), ('h', 10, 50), ('i:', 50, 90), ('SIL', 90, 100)]
    """
    segments = []
    bounds = phone_boundaries(events, n_samples) + [(n_samples, None)]
    for (start, phone), (end, _) in zip(bounds, bounds[1:]):
        if end <= start:
            continue
        if segments and segments[-1][0] == phone:
            segments[-1] = (phone, segments[-1][1], end)
        else:
            segments.append((phone, start, end))
    return segments


def frame_labels(events, n_samples):
    """The phone at the centre of each 10 ms frame: a list of
    ``n_samples // 160`` names (see the module docstring)."""
    bounds = phone_boundaries(events, n_samples)
    starts = np.array([b[0] for b in bounds])
    centres = np.arange(n_samples // FRAME_SAMPLES) * FRAME_SAMPLES + FRAME_SAMPLES // 2
    which = np.searchsorted(starts, centres, side="right") - 1
    return [bounds[i][1] for i in which]


def split_by_speaker(utterance_ids, seed, held_out=HELD_OUT_FRACTION):
    """``(train_ids, test_ids)``, sorted: the utterances of about
    ``held_out`` of the speakers (at least one; the speaker is the id's part
    before the first ``-``) make the test split, drawn from ``seed``.

    >>> split_by_speaker(["1-5-0000", "1-5-0001", "2-6-0000", "3-7-0000",
    ...                   "4-8-0000"], seed=0)[1]
    ['3-7-0000']
    """
    speakers = sorted({uid.split("-", 1)[0] for uid in utterance_ids})
    count = max(1, int(round(len(speakers) * held_out)))
    count = min(count, max(1, len(speakers) - 1))
    rng = rng_for(seed, "librispeech-phone-split")
    test_speakers = set(rng.choice(speakers, size=count, replace=False).tolist())
    train = sorted(u for u in utterance_ids if u.split("-", 1)[0] not in test_speakers)
    test = sorted(u for u in utterance_ids if u.split("-", 1)[0] in test_speakers)
    return train, test


class PhoneLabels:
    """Collects the frame labels of many utterances compactly (one small
    integer a frame) and writes them as the alignment folder."""

    def __init__(self):
        self._code = {SIL: 0}
        self._labels = {}

    def add(self, utterance_id, names):
        """Store one utterance's frame labels (a sequence of phone names)."""
        if utterance_id in self._labels:
            raise ValueError(f"utterance {utterance_id} added twice")
        code = self._code
        for name in set(names):
            code.setdefault(name, len(code))
        self._labels[utterance_id] = np.fromiter(
            (code[n] for n in names), dtype=np.uint16, count=len(names))

    def phones(self):
        """Phone names by index: ``SIL`` first, the rest sorted."""
        return [SIL] + sorted(n for n in self._code if n != SIL)

    def write(self, folder, train_ids, test_ids):
        """Write the alignment folder (``write_alignments``) into ``folder``,
        with the phone indices of ``phones()``."""
        phones = self.phones()
        remap = np.zeros(len(self._code), dtype=np.uint16)
        for name, code in self._code.items():
            remap[code] = phones.index(name)
        write_alignments(folder, {uid: remap[codes] for uid, codes in self._labels.items()},
                         train_ids, test_ids, phones)
