"""IEMOCAP preparation for 4-class emotion recognition (ER), SUPERB style.

Input layout (the corpus as distributed; ``data_folder`` is
``IEMOCAP_full_release``)::

    data_folder/Session{1..5}/sentences/wav/<dialog>/<turn>.wav
    data_folder/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt

Labels come from the EmoEvaluation files: each turn's line
``[START - END]<TAB><turn><TAB><category><TAB>[V, A, D]``. Four classes are
kept: ``neu``, ``hap`` (with ``exc`` merged into ``hap``), ``ang`` and
``sad``; every other category (``fru``, ``sur``, ``fea``, ``dis``, ``oth``,
``xxx`` ...) is discarded.

Five folds, leave one session out: for fold ``k``, ``test`` = Session ``k``
and ``train``/``valid`` come from the four other sessions. Valid rule
(``valid``):

* ``"random"`` (default, as s3prl's ER task): a seeded random 20 %
  (``valid_ratio``) of the other sessions' utterances, drawn separately in
  every (session, emotion) group so valid has the same class and session
  mix as train. Valid shares speakers with train (only test is speaker
  independent).
* ``"session"``: the whole next session (``k % 5 + 1``) is valid, so valid
  is speaker independent too, at the cost of a quarter of the training data.

Output: ``save_folder/fold{k}_{train,valid,test}.csv`` with columns
``ID,duration,wav,spk_id,emotion``; ``ID`` is the turn name
(``Ses01F_impro01_M003``), ``spk_id`` the session and sex of the turn's
speaker (``Ses01M``: the letter before the turn number, not the dialog's).

Bad inputs follow ``data_prep.problems``: a missing data folder, session or
EmoEvaluation folder is fatal; a dialog without its EmoEvaluation file, a
labelled turn whose audio is missing, an unreadable/empty file or one at
another sample rate is listed (nothing written) or left out with
``skip_bad_files=True``.

Command line::

    python -m data_prep.iemocap --data_folder data/mini/IEMOCAP_full_release \\
        --save_folder results/prep/iemocap
"""
import logging
import os
import random
import re
import sys
from collections import defaultdict

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .cli import cli_parser, run_cli
from .manifests import format_seconds, relative_to_root
from .problems import check_data_folder
from .runner import run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id", "emotion"]
SESSIONS = (1, 2, 3, 4, 5)
SPLITS = ("train", "valid", "test")
EMOTION_MAP = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
EMOTIONS = ("neu", "hap", "ang", "sad")
_TURN_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[")


def parse_emo_evaluation(path, problems):
    """``[(line number, turn, category)]`` of one EmoEvaluation file.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "Ses01F_impro01.txt")
    >>> _ = open(path, "w").write(
    ...     "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\\n\\n"
    ...     "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\texc\\t[2.5000, 2.5000, 2.5000]\\n"
    ...     "C-E2:\\tNeutral;\\t()\\n")
    >>> from data_prep.problems import ProblemList
    >>> parse_emo_evaluation(path, ProblemList())
    [(3, 'Ses01F_impro01_F000', 'exc')]
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        problems.add(path, f"unreadable EmoEvaluation file ({err})")
        return []
    turns = []
    for number, line in enumerate(lines, 1):
        match = _TURN_LINE.match(line)
        if match:
            turns.append((number, match.group(3), match.group(4)))
    if not turns:
        problems.add(path, "EmoEvaluation file has no '[START - END] TURN EMOTION [V, A, D]' "
                           "line")
    return turns


def speaker_of(turn):
    """``Ses01M`` for turn ``Ses01F_impro01_M003`` (the turn's speaker).

    >>> speaker_of("Ses01F_script01_1_M003"), speaker_of("Ses03M_impro02_F011")
    ('Ses01M', 'Ses03F')
    """
    return turn[:5] + turn.rsplit("_", 1)[-1][0]


def _collect_session(data_folder, session, problems):
    """``[(turn, wav path, emotion)]`` of the 4-class turns of a session."""
    root = os.path.join(data_folder, f"Session{session}")
    if not os.path.isdir(root):
        problems.add(root, "session folder does not exist", fatal=True)
        return []
    eval_dir = os.path.join(root, "dialog", "EmoEvaluation")
    wav_dir = os.path.join(root, "sentences", "wav")
    for folder, what in ((eval_dir, "EmoEvaluation"), (wav_dir, "sentences/wav")):
        if not os.path.isdir(folder):
            problems.add(folder, f"{what} folder does not exist", fatal=True)
    if any(p.fatal for p in problems):
        return []
    dialogs = sorted(e.name for e in os.scandir(wav_dir)
                     if e.is_dir() and not e.name.startswith("."))
    evaluations = sorted(n[:-4] for n in os.listdir(eval_dir)
                         if n.endswith(".txt") and not n.startswith("."))
    for dialog in dialogs:
        if dialog not in evaluations:
            problems.add(os.path.join(eval_dir, f"{dialog}.txt"),
                         f"EmoEvaluation file missing (labels of the turns in "
                         f"sentences/wav/{dialog}/)")
    out = []
    for dialog in evaluations:
        eval_path = os.path.join(eval_dir, f"{dialog}.txt")
        for number, turn, category in parse_emo_evaluation(eval_path, problems):
            if category not in EMOTION_MAP:
                continue
            wav = os.path.join(wav_dir, dialog, f"{turn}.wav")
            if not os.path.isfile(wav):
                problems.add(wav, f"labelled in EmoEvaluation/{dialog}.txt line {number} "
                                  "but the audio file is missing")
                continue
            out.append((turn, wav, EMOTION_MAP[category]))
    return out


def fold_splits(turns_by_session, fold, valid="random", valid_ratio=0.2, seed=1234):
    """``{split: [turn tuple]}`` of one fold (see the module docstring).

    ``turns_by_session`` maps each session to ``[(turn, wav, emotion)]``.

    >>> data = {s: [(f"Ses0{s}F_impro01_F{i:03d}", "", "neu") for i in range(10)]
    ...         for s in SESSIONS}
    >>> {k: len(v) for k, v in fold_splits(data, 2).items()}
    {'train': 32, 'valid': 8, 'test': 10}
    >>> {k: len(v) for k, v in fold_splits(data, 5, valid="session").items()}
    {'train': 30, 'valid': 10, 'test': 10}
    """
    out = {"train": [], "valid": [], "test": list(turns_by_session.get(fold, []))}
    if valid == "session":
        valid_session = fold % len(SESSIONS) + 1
        for session, turns in sorted(turns_by_session.items()):
            if session != fold:
                out["valid" if session == valid_session else "train"] += turns
        return out
    for session, turns in sorted(turns_by_session.items()):
        if session == fold:
            continue
        groups = defaultdict(list)
        for item in turns:
            groups[item[2]].append(item)
        for emotion in sorted(groups):
            items = sorted(groups[emotion])
            rng = random.Random(f"{seed}-fold{fold}-{session}-{emotion}")
            n_valid = int(round(valid_ratio * len(items)))
            picked = set(rng.sample(range(len(items)), n_valid))
            for k, item in enumerate(items):
                out["valid" if k in picked else "train"].append(item)
    return out


def prepare_iemocap(data_folder, save_folder, folds=SESSIONS, skip_prep=False,
                    skip_bad_files=False, num_workers=None, valid="random",
                    valid_ratio=0.2, seed=1234, sample_rate=SAMPLE_RATE, progress=True):
    """Write ``fold{k}_{train,valid,test}.csv`` (``ID,duration,wav,spk_id,
    emotion``) for IEMOCAP 4-class emotion recognition.

    Arguments
    ---------
    data_folder : str
        The ``IEMOCAP_full_release`` folder (holds ``Session1/`` ...).
    save_folder : str
        Where the CSVs go.
    folds : sequence of int
        Folds to write (fold ``k`` tests on Session ``k``); all 5 sessions
        are always read.
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out bad turns instead of raising ``DataPreparationError``.
    num_workers : int, optional
        Processes scanning audio headers (default: every core).
    valid : str
        ``"random"`` (``valid_ratio`` of each session and emotion, seeded)
        or ``"session"`` (the next session).
    valid_ratio : float
        Share of the non-test utterances in valid with ``valid="random"``.
    seed : int
        Seed of the random valid split.
    sample_rate : int
        Expected sample rate of every file.
    progress : bool
        Progress bar while scanning.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``); its
    ``csv_files`` keys are ``fold1_train`` ... ``fold5_test``.

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_iemocap("/no/such/folder", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the IEMOCAP_full_release folder, which holds Session1/ ...)
    """
    if skip_prep:
        logger.info("IEMOCAP preparation skipped (skip_prep=True)")
        return None
    folds = [int(folds)] if isinstance(folds, (int, str)) else [int(k) for k in folds]
    if not folds or any(k not in SESSIONS for k in folds):
        raise ValueError(f"folds must be some of {SESSIONS}, got {folds}")
    if valid not in ("random", "session"):
        raise ValueError(f"valid must be 'random' or 'session', got {valid!r}")
    if not 0 < valid_ratio < 1:
        raise ValueError(f"valid_ratio must be in (0, 1), got {valid_ratio}")
    data_folder = os.path.abspath(data_folder)
    outputs = {f"fold{k}_{s}": f"fold{k}_{s}.csv" for k in folds for s in SPLITS}
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "valid": valid,
               "valid_ratio": valid_ratio if valid == "random" else None,
               "seed": seed, "version": PREP_VERSION}

    def collect(todo, problems):
        hint = "pass the IEMOCAP_full_release folder, which holds Session1/ ..."
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        sessions = {s: _collect_session(data_folder, s, problems) for s in SESSIONS}

        def build(scan, problems):
            bad = problems.bad_paths()
            good = {s: [t for t in turns if t[1] not in bad and t[1] in scan.frames]
                    for s, turns in sessions.items()}
            tables = {}
            for key in todo:
                fold, split = int(key[4]), key.split("_", 1)[1]
                rows = [{"ID": turn, "duration": format_seconds(scan.frames[wav], sample_rate),
                         "wav": relative_to_root(wav, data_folder), "spk_id": speaker_of(turn),
                         "emotion": emotion}
                        for turn, wav, emotion in
                        fold_splits(good, fold, valid, valid_ratio, seed)[split]]
                tables[key] = (sorted(rows, key=lambda r: r["ID"]), CSV_COLUMNS)
            return tables

        return [t[1] for turns in sessions.values() for t in turns], build

    return run_preparation("iemocap", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="IEMOCAP preparation")


def main(argv=None):
    parser = cli_parser("iemocap",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,emotion) for the "
                        "five leave-one-session-out folds of IEMOCAP (neu, hap+exc, ang, "
                        "sad).",
                        "the IEMOCAP_full_release folder (holds Session1/ ...)")
    parser.add_argument("--folds", type=int, nargs="+", default=list(SESSIONS),
                        choices=SESSIONS)
    parser.add_argument("--valid", choices=("random", "session"), default="random")
    parser.add_argument("--valid_ratio", type=float, default=0.2)
    return run_cli(parser, argv, prepare_iemocap, "leave out bad turns instead of stopping")


if __name__ == "__main__":
    sys.exit(main())
