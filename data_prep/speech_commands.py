"""Google Speech Commands (v0.02) preparation for keyword spotting (KS).

Input layout (the corpus as distributed; ``data_folder`` is the folder that
holds the word folders)::

    data_folder/<word>/<speaker hash>_nohash_<n>.wav     one clip per file, 16 kHz
    data_folder/_background_noise_/<noise>.wav          long noise recordings
    data_folder/validation_list.txt                      ``<word>/<file>.wav`` per line
    data_folder/testing_list.txt

Splits: ``valid`` = the clips in ``validation_list.txt``, ``test`` = those in
``testing_list.txt``, ``train`` = every other clip of a word folder (the
lists are split by speaker, so the three splits share no speaker).

Two task variants, written side by side (``num_classes``):

* **12 classes** (SUPERB KS): the 10 commands ``yes no up down left right on
  off stop go``, ``_unknown_`` for every other word and ``_silence_``.
  Written to ``kws12_{train,valid,test}.csv``.
* **35 classes**: every word folder is its own class (no ``_silence_``, no
  ``_unknown_``). Written to ``kws35_{train,valid,test}.csv``.

Columns of every CSV: ``ID,duration,wav,start,stop,label``. ``start`` and
``stop`` are sample indices; a word clip is the whole file (``start=0``,
``stop`` = its length), a silence example is a 1 s *segment* of a background
noise file, so no audio is rewritten. A recipe loads a row with
``speechbrain.dataio.dataio.read_audio({"file": wav, "start": int(start),
"stop": int(stop)})`` and pads clips shorter than 1 s.

Decisions (12 classes):

* **_silence_**: by default each split gets as many 1 s crops as the
  *average* command class of that split has clips (``silence_per_split``
  overrides it), i.e. silence is about one class's worth of data, as in
  SUPERB / the TensorFlow reference (silence = 10 % of the known clips).
  To keep the splits disjoint the crops come from disjoint *time regions* of
  every noise file: the first 80 % of each file for ``train``, the next 10 %
  for ``valid`` and the last 10 % for ``test`` (``SILENCE_REGIONS``). Within
  a split the crop starts are spread evenly over all usable positions of all
  noise files (deterministic, no random draw; crops overlap only when a split
  asks for more crops than its region holds).
* **_unknown_**: by default (``unknown="all"``) every clip of the 25
  non-command words is kept, in every split, and the recipe balances the
  classes when sampling (SUPERB uses class-balanced sampling for training);
  ``unknown="average"`` instead keeps a seeded random subset of as many
  unknown clips as the average command class has (per split).

Bad inputs follow ``data_prep.problems``: a missing data folder, split list,
command folder or ``_background_noise_`` folder is fatal; a list line whose
audio is missing, an unreadable/empty clip or one at another sample rate is
listed (nothing written) or left out with ``skip_bad_files=True``.

Command line::

    python -m data_prep.speech_commands --data_folder data/mini/speech_commands_v0.02 \\
        --save_folder results/prep/speech_commands
"""
import logging
import os
import random
import sys
from collections import Counter

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .cli import cli_parser, run_cli
from .manifests import format_seconds, relative_to_root
from .problems import check_data_folder
from .runner import run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "start", "stop", "label"]
SPLITS = ("train", "valid", "test")
LIST_FILES = {"valid": "validation_list.txt", "test": "testing_list.txt"}
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
NOISE_FOLDER = "_background_noise_"
# Share of every background-noise file each split takes its silence crops from.
SILENCE_REGIONS = {"train": (0.0, 0.8), "valid": (0.8, 0.9), "test": (0.9, 1.0)}
SILENCE_SECONDS = 1.0
TASKS = (12, 35)


def silence_crops(noise_frames, count, region, crop):
    """Evenly spread ``crop``-sample segments over a time region of noises.

    Arguments
    ---------
    noise_frames : dict
        ``{path: number of frames}`` of the background noise files.
    count : int
        Number of crops.
    region : (float, float)
        Share of every file to take crops from, e.g. ``(0.8, 0.9)``.
    crop : int
        Crop length in samples.

    Returns
    -------
    list of (path, start)
        Crop starts in samples (a crop ends at ``start + crop``); empty if
        ``count`` is 0. Raises ``ValueError`` if no file has
        ``crop`` samples in the region.

    >>> silence_crops({"a.wav": 100, "b.wav": 50}, 4, (0.0, 1.0), 40)
    [('a.wav', 9), ('a.wav', 27), ('a.wav', 45), ('b.wav', 2)]
    """
    usable = []  # (path, first start, number of possible starts)
    for path in sorted(noise_frames):
        frames = noise_frames[path]
        first, end = int(region[0] * frames), int(region[1] * frames)
        if end - first >= crop:
            usable.append((path, first, end - first - crop + 1))
    if count <= 0:
        return []
    total = sum(n for _, _, n in usable)
    if total == 0:
        raise ValueError(f"no background noise file has {crop} samples in the "
                         f"region {region} of its length")
    crops = []
    for i in range(count):
        offset = int((i + 0.5) * total / count)
        for path, first, n in usable:
            if offset < n:
                crops.append((path, first + offset))
                break
            offset -= n
    return crops


def _read_list(path, problems):
    """``{relative path: line number}`` of a split list; a missing list is
    fatal, malformed lines are problems."""
    entries = {}
    if not os.path.isfile(path):
        problems.add(path, "split list does not exist", fatal=True)
        return entries
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            rel = line.strip().replace("\\", "/")
            if not rel:
                continue
            parts = rel.split("/")
            if len(parts) != 2 or not parts[1].endswith(".wav") or parts[0].startswith("_"):
                problems.add(path, f"line {number}: {rel!r} is not <word>/<file>.wav")
            else:
                entries.setdefault(rel, number)
    return entries


def _collect_clips(data_folder):
    """``{relative path: word}`` of every clip in the word folders."""
    clips = {}
    for entry in sorted(os.scandir(data_folder), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith(("_", ".")):
            continue
        for name in sorted(os.listdir(entry.path)):
            if name.endswith(".wav") and not name.startswith("."):
                clips[f"{entry.name}/{name}"] = entry.name
    return clips


def _clip_id(rel):
    word, name = rel.split("/")
    return f"{word}_{name[:-len('.wav')]}"


def prepare_speech_commands(data_folder, save_folder, num_classes=TASKS, skip_prep=False,
                            skip_bad_files=False, num_workers=None, unknown="all",
                            silence_per_split=None, seed=1234, sample_rate=SAMPLE_RATE,
                            progress=True):
    """Write ``kws{12,35}_{train,valid,test}.csv`` (``ID,duration,wav,start,
    stop,label``) for Speech Commands.

    Arguments
    ---------
    data_folder : str
        The corpus folder (holds the word folders and the split lists).
    save_folder : str
        Where the CSVs go.
    num_classes : int or sequence of int
        Task variants to write: 12 and/or 35.
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out bad clips instead of raising ``DataPreparationError``.
    num_workers : int, optional
        Processes scanning audio headers (default: every core).
    unknown : str
        12 classes: ``"all"`` keeps every non-command clip as ``_unknown_``;
        ``"average"`` keeps a seeded random subset the size of the average
        command class (per split).
    silence_per_split : int or dict, optional
        12 classes: silence crops per split (an int for every split, or
        ``{split: count}``); default: the average command class size.
    seed : int
        Seed of the ``unknown="average"`` subset.
    sample_rate : int
        Expected sample rate of every file.
    progress : bool
        Progress bar while scanning.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``); its
    ``csv_files`` keys are ``kws12_train`` ... ``kws35_test``.

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_speech_commands("/no/such/folder", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the folder that holds yes/, no/ ... and validation_list.txt)
    """
    if skip_prep:
        logger.info("Speech Commands preparation skipped (skip_prep=True)")
        return None
    tasks = [int(num_classes)] if isinstance(num_classes, (int, str)) else \
        [int(n) for n in num_classes]
    if not tasks or any(n not in TASKS for n in tasks):
        raise ValueError(f"num_classes must be some of {TASKS}, got {num_classes!r}")
    if unknown not in ("all", "average"):
        raise ValueError(f"unknown must be 'all' or 'average', got {unknown!r}")
    if silence_per_split is not None and not isinstance(silence_per_split, dict):
        silence_per_split = {s: int(silence_per_split) for s in SPLITS}
    data_folder = os.path.abspath(data_folder)
    outputs = {f"kws{n}_{s}": f"kws{n}_{s}.csv" for n in tasks for s in SPLITS}
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "unknown": unknown,
               "silence_per_split": silence_per_split, "seed": seed,
               "version": PREP_VERSION}

    def collect(todo, problems):
        need_12 = any(k.startswith("kws12") for k in todo)
        hint = "pass the folder that holds yes/, no/ ... and validation_list.txt"
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        lists = {s: _read_list(os.path.join(data_folder, f), problems)
                 for s, f in LIST_FILES.items()}
        clips = _collect_clips(data_folder)
        split_of = {}
        for split, entries in lists.items():
            for rel, number in entries.items():
                path = os.path.join(data_folder, rel)
                if rel in split_of:
                    problems.add(path, f"listed in {LIST_FILES[split]} line {number} and "
                                       f"in {LIST_FILES[split_of[rel]]}")
                elif rel not in clips:
                    problems.add(path, f"listed in {LIST_FILES[split]} line {number} but "
                                       "the audio file is missing")
                else:
                    split_of[rel] = split
        noise_paths = []
        if need_12:
            words = set(clips.values())
            for word in COMMANDS:
                if word not in words:
                    problems.add(os.path.join(data_folder, word),
                                 "command folder missing or without .wav clips "
                                 "(needed for the 12-class task)", fatal=True)
            noise_dir = os.path.join(data_folder, NOISE_FOLDER)
            if os.path.isdir(noise_dir):
                noise_paths = [os.path.join(noise_dir, n) for n in sorted(os.listdir(noise_dir))
                               if n.endswith(".wav") and not n.startswith(".")]
            if not noise_paths:
                problems.add(noise_dir, "background noise folder missing or without .wav "
                                        "files (needed for the 12-class _silence_)",
                             fatal=True)
        clip_paths = {rel: os.path.join(data_folder, rel) for rel in clips}

        def build(scan, problems):
            bad = problems.bad_paths()
            good = {rel: word for rel, word in clips.items()
                    if clip_paths[rel] not in bad and clip_paths[rel] in scan.frames}
            by_split = {s: [] for s in SPLITS}
            for rel in good:
                by_split[split_of.get(rel, "train")].append(rel)

            def clip_row(rel, label):
                frames = scan.frames[clip_paths[rel]]
                return {"ID": _clip_id(rel), "duration": format_seconds(frames, sample_rate),
                        "wav": relative_to_root(clip_paths[rel], data_folder),
                        "start": 0, "stop": frames, "label": label}

            tables = {}
            if 35 in tasks:
                for split in SPLITS:
                    rows = [clip_row(rel, good[rel]) for rel in by_split[split]]
                    tables[f"kws35_{split}"] = (sorted(rows, key=lambda r: r["ID"]),
                                                CSV_COLUMNS)
            if 12 in tasks:
                noise_frames = {p: scan.frames[p] for p in noise_paths
                                if p in scan.frames and p not in bad}
                crop = int(round(SILENCE_SECONDS * sample_rate))
                for split in SPLITS:
                    counts = Counter(good[rel] for rel in by_split[split])
                    average = int(round(sum(counts[w] for w in COMMANDS) / len(COMMANDS)))
                    rows = [clip_row(rel, good[rel]) for rel in by_split[split]
                            if good[rel] in COMMANDS]
                    unknowns = sorted(rel for rel in by_split[split]
                                      if good[rel] not in COMMANDS)
                    if unknown == "average" and len(unknowns) > average:
                        rng = random.Random(f"{seed}-{split}")
                        unknowns = sorted(rng.sample(unknowns, average))
                    rows += [clip_row(rel, UNKNOWN) for rel in unknowns]
                    n_silence = (average if silence_per_split is None
                                 else int(silence_per_split.get(split, 0)))
                    try:
                        crops = silence_crops(noise_frames, n_silence,
                                              SILENCE_REGIONS[split], crop)
                    except ValueError as err:
                        problems.add(os.path.join(data_folder, NOISE_FOLDER),
                                     f"cannot cut {n_silence} {split} silence crops: {err}",
                                     fatal=True)
                        crops = []
                    for path, start in crops:
                        name = os.path.basename(path)[:-len(".wav")]
                        rows.append({"ID": f"silence_{name}_{start:09d}",
                                     "duration": format_seconds(crop, sample_rate),
                                     "wav": relative_to_root(path, data_folder),
                                     "start": start, "stop": start + crop,
                                     "label": SILENCE})
                    tables[f"kws12_{split}"] = (sorted(rows, key=lambda r: r["ID"]),
                                                CSV_COLUMNS)
            return tables

        return list(clip_paths.values()) + noise_paths, build

    return run_preparation("speech_commands", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="Speech Commands preparation")


def main(argv=None):
    parser = cli_parser("speech_commands",
                        "Write SpeechBrain CSVs (ID,duration,wav,start,stop,label) for "
                        "Speech Commands keyword spotting (12 and/or 35 classes).",
                        "folder holding the word folders and validation_list.txt")
    parser.add_argument("--num_classes", type=int, nargs="+", default=list(TASKS),
                        choices=TASKS)
    parser.add_argument("--unknown", choices=("all", "average"), default="all")
    parser.add_argument("--silence_per_split", type=int, default=None)
    return run_cli(parser, argv, prepare_speech_commands)


if __name__ == "__main__":
    sys.exit(main())
