"""Frame-level phone alignments in the layout of CPC's LibriSpeech-100
release (``LibriSpeech100_labels_split``, used for linear phone
classification): the one reader (``read_alignments``) and writer
(``write_alignments``) of the format.

A folder holds

* ``converted_aligned_phones.txt``: one line per utterance,
  ``<id> <idx> <idx> ...``: a LibriSpeech utterance id
  ``SPEAKER-CHAPTER-UTTERANCE`` and one phone index (a non-negative integer)
  per 10 ms frame; frame ``k`` covers samples ``[160 k, 160 k + 160)`` at
  16 kHz;
* ``train_split.txt`` / ``test_split.txt``: utterance ids, one a line, each
  aligned in ``converted_aligned_phones.txt``, none in both, neither file
  empty;
* optionally ``phones.txt``: line ``i`` names phone index ``i`` (one name a
  line, no name twice). CPC's release has none: the class count is then the
  largest index + 1 and ``phones`` is None.

Blank lines are skipped (except in ``phones.txt``, where they would shift
the indices). ``write_alignments`` writes every line with single spaces and a
``\\n``, the utterances and the split ids sorted, and refuses what
``read_alignments`` would reject, so a folder it writes always reads back.

Example
-------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_alignments(folder, {"26-495-0000": [0, 1, 1], "19-198-0001": [0, 0, 2, 2, 1]},
...                  train_ids=["19-198-0001"], test_ids=["26-495-0000"],
...                  phones=["SIL", "a", "t"])
>>> print((folder / ALIGNMENT_FILE).read_text(), end="")
19-198-0001 0 0 2 2 1
26-495-0000 0 1 1
>>> aligned = read_alignments(folder)
>>> aligned.train_ids, aligned.num_classes, aligned.labels["19-198-0001"].tolist()
(['19-198-0001'], 3, [0, 0, 2, 2, 1])
>>> _ = (folder / TEST_FILE).write_text("26-495-0000\\n7-8-9\\n")
>>> read_alignments(folder)
Traceback (most recent call last):
...
speechbrain_ext.io.alignments.AlignmentError: .../test_split.txt:2: 7-8-9 has no alignment in ...
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

LABELS_FOLDER = "LibriSpeech100_labels_split"  # its name under <data>/LibriSpeech
ALIGNMENT_FILE = "converted_aligned_phones.txt"
TRAIN_FILE = "train_split.txt"
TEST_FILE = "test_split.txt"
SPLIT_FILES = {"train": TRAIN_FILE, "test": TEST_FILE}
PHONES_FILE = "phones.txt"
FRAME_SAMPLES = 160  # samples per 10 ms label frame at 16 kHz (io.data.SAMPLE_RATE)
UTTERANCE_ID = re.compile(r"\d+-\d+-\d+")
MAX_PHONE_INDEX = int(np.iinfo(np.int16).max)  # beyond: not a phone inventory


class AlignmentError(ValueError):
    """A phone alignment folder that does not follow the format (the message
    starts ``file:line:`` for a malformed line), or labels and splits
    ``write_alignments`` cannot write in it."""


@dataclass
class Alignments:
    """What an alignment folder holds.

    labels : ``{utterance id: int64 array [label frames]}``, 10 ms frames, in
        the alignment file's order.
    train_ids, test_ids : utterance ids in their split files' order.
    phones : phone names in index order, or None (no ``phones.txt``).
    """

    labels: dict
    train_ids: List[str]
    test_ids: List[str]
    phones: Optional[List[str]] = None

    @property
    def num_classes(self):
        """``len(phones)``, or without phones the largest index + 1."""
        if self.phones is not None:
            return len(self.phones)
        return 1 + max((int(v.max()) for v in self.labels.values() if len(v)), default=-1)

    num_phones = num_classes


# ---------------------------------------------------------------- reading


def _lines(path):
    """``(line number, stripped line)`` of the non-blank lines of ``path``."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if line:
                yield number, line


def _read_phones(path):
    phones, seen = [], {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            name = line.strip()
            if not name or len(name.split()) != 1:
                raise AlignmentError(f"{path}:{number}: expected one phone name a line, got {line.rstrip()!r}")
            if name in seen:
                raise AlignmentError(f"{path}:{number}: phone {name!r} already named on line {seen[name]}")
            seen[name] = number
            phones.append(name)
    if not phones:
        raise AlignmentError(f"{path}: no phone names")
    return phones


def _read_labels(path, num_phones=None, phones_path=None):
    labels, where = {}, {}
    for number, line in _lines(path):
        fields = line.split()
        uid = fields[0]
        if len(fields) < 2:
            raise AlignmentError(f"{path}:{number}: expected '<utterance id> <phone index> ...', "
                                 f"got {line[:60]!r}")
        if not UTTERANCE_ID.fullmatch(uid):
            raise AlignmentError(f"{path}:{number}: {uid[:40]!r} is not a LibriSpeech utterance id "
                                 f"SPEAKER-CHAPTER-UTTERANCE")
        if uid in where:
            raise AlignmentError(f"{path}:{number}: {uid} already aligned on line {where[uid]}")
        try:
            values = np.array(fields[1:], dtype=np.int64)
        except ValueError:
            bad = next((t for t in fields[1:] if not t.lstrip("+-").isdigit()), fields[1])
            raise AlignmentError(f"{path}:{number}: phone index {bad[:20]!r} of {uid} is not an "
                                 f"integer") from None
        low, high = int(values.min()), int(values.max())
        if low < 0:
            raise AlignmentError(f"{path}:{number}: negative phone index {low} in {uid}")
        if num_phones is not None and high >= num_phones:
            raise AlignmentError(f"{path}:{number}: phone index {high} in {uid}, but {phones_path} "
                                 f"names {num_phones} phones (indices 0-{num_phones - 1})")
        if high > MAX_PHONE_INDEX:
            raise AlignmentError(f"{path}:{number}: phone index {high} in {uid} is implausibly large")
        labels[uid], where[uid] = values, number
    if not labels:
        raise AlignmentError(f"{path}: no aligned utterances")
    return labels


def _read_split(path, labels, alignment_path):
    ids, where = [], {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 1:
            raise AlignmentError(f"{path}:{number}: expected one utterance id a line, got {line[:60]!r}")
        uid = fields[0]
        if uid in where:
            raise AlignmentError(f"{path}:{number}: {uid} already listed on line {where[uid]}")
        if uid not in labels:
            raise AlignmentError(f"{path}:{number}: {uid} has no alignment in {alignment_path}")
        where[uid] = number
        ids.append(uid)
    if not ids:
        raise AlignmentError(f"{path}: no utterance ids")
    return ids, where


def read_alignments(folder):
    """Read and check an alignment folder (see the module docstring).

    Malformed lines (no index, a non-integer, negative or implausibly large
    index, an index beyond ``phones.txt``, an id that is not
    ``SPK-CHAPTER-UTT``, an id aligned twice, a phone named twice), a split
    id listed twice or without an alignment, an id in both splits are
    ``AlignmentError`` naming the file and line; an empty file is one naming
    the file; a missing folder or file is a ``FileNotFoundError`` naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no phone alignment folder (expected {ALIGNMENT_FILE}, "
                                f"{TRAIN_FILE} and {TEST_FILE})")
    for name in (ALIGNMENT_FILE, TRAIN_FILE, TEST_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: missing from the phone alignment folder")
    phones_path = folder / PHONES_FILE
    phones = _read_phones(phones_path) if phones_path.is_file() else None
    alignment_path = folder / ALIGNMENT_FILE
    labels = _read_labels(alignment_path, len(phones) if phones else None, phones_path)
    train_ids, train_where = _read_split(folder / TRAIN_FILE, labels, alignment_path)
    test_ids, test_where = _read_split(folder / TEST_FILE, labels, alignment_path)
    for uid in test_ids:
        if uid in train_where:
            raise AlignmentError(f"{folder / TEST_FILE}:{test_where[uid]}: {uid} is also in "
                                 f"{folder / TRAIN_FILE} (line {train_where[uid]})")
    return Alignments(labels, train_ids, test_ids, phones)


# ---------------------------------------------------------------- writing


def _checked_labels(folder, labels, phones):
    """``{uid: integer array}`` of ``labels``, or ``AlignmentError`` for what
    ``read_alignments`` would reject."""
    limit = MAX_PHONE_INDEX + 1 if phones is None else len(phones)
    checked = {}
    for uid, values in labels.items():
        if not isinstance(uid, str) or not UTTERANCE_ID.fullmatch(uid):
            raise AlignmentError(f"{folder}: {uid!r} is not a LibriSpeech utterance id "
                                 f"SPEAKER-CHAPTER-UTTERANCE")
        values = np.asarray(values)
        if values.ndim != 1 or not len(values) or values.dtype.kind not in "iu":
            raise AlignmentError(f"{folder}: the labels of {uid} must be a non-empty 1-d sequence of "
                                 f"integers, got {values.dtype} of shape {values.shape}")
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= limit:
            raise AlignmentError(f"{folder}: phone index {low if low < 0 else high} in {uid} is out of "
                                 f"range 0-{limit - 1}")
        checked[uid] = values
    if not checked:
        raise AlignmentError(f"{folder}: no aligned utterances to write")
    return checked


def write_alignments(folder, labels, train_ids, test_ids, phones=None):
    """Write an alignment folder (created if needed; see the module docstring).

    labels : ``{utterance id: integer sequence}``, one phone index per 10 ms
        frame; written sorted by id.
    train_ids, test_ids : the splits, written sorted.
    phones : names by index, written as ``phones.txt``; None writes none
        (and removes one left from an earlier write).

    Raises ``AlignmentError``, writing nothing, for what ``read_alignments``
    would reject: an id that is not ``SPK-CHAPTER-UTT``, labels that are not
    non-negative integers (below ``len(phones)``), an empty split, a split id
    without labels or listed twice, an id in both splits, a phone name with
    whitespace or named twice.
    """
    folder = Path(folder)
    if phones is not None:
        phones = list(phones)
        if not phones:
            raise AlignmentError(f"{folder}: no phone names to write")
        bad = [p for p in phones if not isinstance(p, str) or len(p.split()) != 1 or p != p.strip()]
        if bad:
            raise AlignmentError(f"{folder}: phone names must be single words, got {bad[0]!r}")
        if len(set(phones)) != len(phones):
            twice = next(p for i, p in enumerate(phones) if p in phones[:i])
            raise AlignmentError(f"{folder}: phone {twice!r} named twice")
    labels = _checked_labels(folder, labels, phones)
    splits = {}
    for name, ids in (("train", train_ids), ("test", test_ids)):
        ids = sorted(ids)
        if not ids:
            raise AlignmentError(f"{folder}: no {name} utterance ids to write")
        missing = [uid for uid in ids if uid not in labels]
        if missing:
            raise AlignmentError(f"{folder}: {name} utterance {missing[0]} has no labels")
        if len(set(ids)) != len(ids):
            raise AlignmentError(f"{folder}: {name} utterance {next(a for a, b in zip(ids, ids[1:]) if a == b)} "
                                 f"listed twice")
        splits[name] = ids
    both = sorted(set(splits["train"]) & set(splits["test"]))
    if both:
        raise AlignmentError(f"{folder}: {both[0]} is in both splits")

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ALIGNMENT_FILE, "w", encoding="utf-8", newline="\n") as out:
        for uid in sorted(labels):
            out.write(uid + " " + " ".join(map(str, labels[uid].tolist())) + "\n")
    files = [(TRAIN_FILE, splits["train"]), (TEST_FILE, splits["test"])]
    if phones is not None:
        files.insert(0, (PHONES_FILE, phones))
    elif (folder / PHONES_FILE).is_file():
        (folder / PHONES_FILE).unlink()
    for name, lines in files:
        with open(folder / name, "w", encoding="utf-8", newline="\n") as out:
            out.write("".join(f"{line}\n" for line in lines))
