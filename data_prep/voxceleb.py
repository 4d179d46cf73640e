"""VoxCeleb1 preparation for speaker identification (SID) and automatic
speaker verification (ASV).

Input layout (the corpus as distributed, dev and test audio unpacked into
one ``wav/`` folder; ``data_folder`` is the folder that holds it)::

    data_folder/wav/<speaker id>/<video id>/<NNNNN>.wav
    data_folder/iden_split.txt    "<1|2|3> id10001/1zcIwhmdeo4/00001.wav" per line
    data_folder/veri_test2.txt    "<0|1> <enrolment file> <test file>" per line

Identification (``tasks`` includes ``"identification"``): the official
split, ``1`` -> ``iden_train.csv``, ``2`` -> ``iden_dev.csv``, ``3`` ->
``iden_test.csv``, columns ``ID,duration,wav,spk_id``.

Verification (``"verification"``), on the trial list ``trials_file``
(default ``veri_test2.txt``, the cleaned VoxCeleb1-O list):

* ``veri_train.csv`` (``ID,duration,wav,spk_id``): every file under
  ``wav/`` of the speakers that appear in no trial (the VoxCeleb1 dev
  speakers), for training the speaker embedding.
* ``veri_test.csv`` (``ID,duration,wav,spk_id``): the enrolment and test
  files used in the trials (each once).
* ``veri_trials.csv``: ``ID,label,enrol,test,enrol_wav,test_wav``, one row
  per trial in the list's order; ``label`` is 1 (same speaker) or 0,
  ``enrol``/``test`` are the ``ID`` s of the two files in ``veri_test.csv``
  and ``enrol_wav``/``test_wav`` their ``$data_root`` paths.

``ID`` is the file's path below ``wav/`` without ``.wav``, with ``--`` for
``/`` (``id10001--1zcIwhmdeo4--00001``); ``spk_id`` its speaker folder.

Bad inputs follow ``data_prep.problems``: a missing data folder, ``wav/``
folder or split/trial file is fatal; a split or trial line whose audio is
missing, an unreadable/empty file or one at another sample rate, a
malformed line or a trial whose label disagrees with its speakers is listed
(nothing written), or left out with ``skip_bad_files=True`` (trials that use
a left-out file are left out too).

Command line::

    python -m data_prep.voxceleb --data_folder data/mini/VoxCeleb1 \\
        --save_folder results/prep/voxceleb1
"""
import logging
import os
import sys

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .cli import cli_parser, run_cli
from .manifests import format_seconds, relative_to_root
from .problems import check_data_folder
from .runner import run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id"]
TRIAL_COLUMNS = ["ID", "label", "enrol", "test", "enrol_wav", "test_wav"]
IDEN_SPLITS = {"1": "train", "2": "dev", "3": "test"}
TASKS = ("identification", "verification")
SPLIT_FILE = "iden_split.txt"
DEFAULT_TRIALS = "veri_test2.txt"


def utterance_id(rel):
    """Manifest ID of a path below ``wav/``.

    >>> utterance_id("id10001/1zcIwhmdeo4/00001.wav")
    'id10001--1zcIwhmdeo4--00001'
    """
    return rel[:-len(".wav")].replace("/", "--") if rel.endswith(".wav") else \
        rel.replace("/", "--")


def _valid_rel(rel):
    parts = rel.split("/")
    return len(parts) == 3 and all(parts) and rel.endswith(".wav")


def read_iden_split(path, wav_dir, problems):
    """``{relative path: split}`` of ``iden_split.txt``; bad lines and
    missing audio are problems."""
    out = {}
    if not os.path.isfile(path):
        problems.add(path, "identification split file does not exist", fatal=True)
        return out
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[0] not in IDEN_SPLITS or not _valid_rel(fields[1]):
                problems.add(path, f"line {number}: expected '<1|2|3> <spk>/<video>/<n>.wav', "
                                   f"got {line.strip()!r}")
                continue
            rel = fields[1]
            audio = os.path.join(wav_dir, rel)
            if rel in out:
                problems.add(audio, f"listed twice in {os.path.basename(path)} "
                                    f"(line {number})")
            elif not os.path.isfile(audio):
                problems.add(audio, f"listed in {os.path.basename(path)} line {number} but "
                                    "the audio file is missing")
            else:
                out[rel] = IDEN_SPLITS[fields[0]]
    return out


def read_trials(path, wav_dir, problems):
    """``([(label, enrol, test)], speakers)`` of a trial list: the trials
    (paths below ``wav/``) and the speakers of every well-formed line. A
    malformed line, a label that disagrees with the speakers or a missing
    file is a problem and the trial is left out."""
    trials, speakers = [], set()
    if not os.path.isfile(path):
        problems.add(path, "verification trial list does not exist", fatal=True)
        return trials, speakers
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1") or \
                    not (_valid_rel(fields[1]) and _valid_rel(fields[2])):
                problems.add(path, f"line {number}: expected '<0|1> <enrol wav> <test wav>', "
                                   f"got {line.strip()!r}")
                continue
            label, enrol, test = int(fields[0]), fields[1], fields[2]
            speakers.update((enrol.split("/")[0], test.split("/")[0]))
            same = enrol.split("/")[0] == test.split("/")[0]
            if label != int(same):
                problems.add(path, f"line {number}: label {label} but the speakers are "
                                   f"{'the same' if same else 'different'} ({enrol}, {test})")
                continue
            missing = [r for r in (enrol, test) if not os.path.isfile(os.path.join(wav_dir, r))]
            for rel in missing:
                problems.add(os.path.join(wav_dir, rel),
                             f"used in {name} line {number} but the audio file is missing")
            if not missing:
                trials.append((label, enrol, test))
    return trials, speakers


def walk_wav(wav_dir, speakers=None):
    """Paths below ``wav_dir`` (``spk/video/n.wav``) of ``speakers`` (all if
    None), sorted."""
    out = []
    for spk in sorted(e.name for e in os.scandir(wav_dir) if e.is_dir()):
        if speakers is not None and spk not in speakers:
            continue
        for video in sorted(e.name for e in os.scandir(os.path.join(wav_dir, spk))
                            if e.is_dir()):
            folder = os.path.join(wav_dir, spk, video)
            out += [f"{spk}/{video}/{n}" for n in sorted(os.listdir(folder))
                    if n.endswith(".wav") and not n.startswith(".")]
    return out


def prepare_voxceleb(data_folder, save_folder, tasks=TASKS, trials_file=DEFAULT_TRIALS,
                     skip_prep=False, skip_bad_files=False, num_workers=None,
                     sample_rate=SAMPLE_RATE, progress=True):
    """Write the VoxCeleb1 identification and/or verification manifests
    (see the module docstring).

    Arguments
    ---------
    data_folder : str
        Folder holding ``wav/``, ``iden_split.txt`` and the trial list.
    save_folder : str
        Where the CSVs go.
    tasks : sequence of str
        ``"identification"`` and/or ``"verification"``.
    trials_file : str
        Trial list (relative to ``data_folder``, or absolute).
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out bad files and trials instead of raising
        ``DataPreparationError``.
    num_workers : int, optional
        Processes scanning audio headers (default: every core).
    sample_rate : int
        Expected sample rate of every file.
    progress : bool
        Progress bar while scanning.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``); its
    ``csv_files`` keys are ``iden_train``, ``iden_dev``, ``iden_test``,
    ``veri_train``, ``veri_test`` and ``veri_trials``.

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_voxceleb("/no/such/folder", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the VoxCeleb1 folder, which holds wav/ and iden_split.txt)
    """
    if skip_prep:
        logger.info("VoxCeleb1 preparation skipped (skip_prep=True)")
        return None
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks or any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be some of {TASKS}, got {tasks}")
    data_folder = os.path.abspath(data_folder)
    wav_dir = os.path.join(data_folder, "wav")
    trials_path = os.path.join(data_folder, trials_file)
    outputs = {}
    if "identification" in tasks:
        outputs.update({f"iden_{s}": f"iden_{s}.csv" for s in IDEN_SPLITS.values()})
    if "verification" in tasks:
        outputs.update({k: f"{k}.csv" for k in ("veri_train", "veri_test", "veri_trials")})
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "trials_file": trials_path,
               "version": PREP_VERSION}

    def collect(todo, problems):
        hint = "pass the VoxCeleb1 folder, which holds wav/ and iden_split.txt"
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        if not os.path.isdir(wav_dir):
            problems.add(wav_dir, "wav folder does not exist (unpack the dev and test audio "
                                  "into data_folder/wav/)", fatal=True)
        iden, trials, train_files = {}, [], []
        if any(k.startswith("iden_") for k in todo):
            iden = read_iden_split(os.path.join(data_folder, SPLIT_FILE), wav_dir, problems)
        if any(k.startswith("veri_") for k in todo):
            trials, trial_speakers = read_trials(trials_path, wav_dir, problems)
            if os.path.isdir(wav_dir):
                all_speakers = {e.name for e in os.scandir(wav_dir) if e.is_dir()}
                train_files = walk_wav(wav_dir, all_speakers - trial_speakers)
        trial_files = sorted({r for _, a, b in trials for r in (a, b)})
        rels = list(iden) + train_files + trial_files

        def build(scan, problems):
            bad = problems.bad_paths()

            def good(rel):
                path = os.path.join(wav_dir, rel)
                return path not in bad and path in scan.frames

            def row(rel):
                path = os.path.join(wav_dir, rel)
                return {"ID": utterance_id(rel),
                        "duration": format_seconds(scan.frames[path], sample_rate),
                        "wav": relative_to_root(path, data_folder),
                        "spk_id": rel.split("/")[0]}

            tables = {}
            for split in IDEN_SPLITS.values():
                tables[f"iden_{split}"] = (
                    [row(r) for r in sorted(iden) if iden[r] == split and good(r)],
                    CSV_COLUMNS)
            tables["veri_train"] = ([row(r) for r in train_files if good(r)], CSV_COLUMNS)
            tables["veri_test"] = ([row(r) for r in trial_files if good(r)], CSV_COLUMNS)
            kept = [t for t in trials if good(t[1]) and good(t[2])]
            tables["veri_trials"] = (
                [{"ID": f"trial{k:06d}", "label": label, "enrol": utterance_id(enrol),
                  "test": utterance_id(test),
                  "enrol_wav": relative_to_root(os.path.join(wav_dir, enrol), data_folder),
                  "test_wav": relative_to_root(os.path.join(wav_dir, test), data_folder)}
                 for k, (label, enrol, test) in enumerate(kept, 1)], TRIAL_COLUMNS)
            return tables

        return [os.path.join(wav_dir, r) for r in rels], build

    return run_preparation("voxceleb1", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="VoxCeleb1 preparation")


def main(argv=None):
    parser = cli_parser("voxceleb",
                        "Write SpeechBrain CSVs for VoxCeleb1 speaker identification "
                        "(iden_*.csv) and verification (veri_*.csv).",
                        "folder holding wav/, iden_split.txt and veri_test2.txt")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--trials_file", default=DEFAULT_TRIALS)
    return run_cli(parser, argv, prepare_voxceleb,
                   "leave out bad files and trials instead of stopping")


if __name__ == "__main__":
    sys.exit(main())
