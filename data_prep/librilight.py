"""Libri-light limited-resource preparation (the 10 h / 1 h / 10 min sets).

Input layout (``librispeech_finetuning.tgz`` as distributed; ``data_folder``
is the ``librispeech_finetuning`` folder)::

    data_folder/1h/{0..5}/{clean,other}/SPK/CHAPTER/SPK-CHAPTER-UTT.flac
    data_folder/9h/{clean,other}/SPK/CHAPTER/...   (+ SPK-CHAPTER.trans.txt)

Subsets: ``10min`` = fold ``1h/0``; ``1h`` = the six ``1h/*`` folds;
``10h`` = ``1h`` + ``9h``. So ``10min`` is part of ``1h``, part of ``10h``.

Output: ``save_folder/librilight-<subset>.csv`` with the LibriSpeech columns
``ID,duration,wav,spk_id,wrd`` (``wav`` is ``$data_root/1h/0/clean/...``).
Each fold is scanned once even when several subsets use it; the bad-input
policy and skip-if-done are those of ``data_prep.problems`` and
``data_prep.done_record``.

Command line::

    python -m data_prep.librilight --data_folder data/mini/librispeech_finetuning \\
        --save_folder results/prep --subsets 10h 1h 10min
"""
import logging
import os
import sys
from pathlib import Path

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .audio_scan import scan_audio
from .cli import cli_parser, run_cli
from .done_record import DoneRecord
from .librispeech import CSV_COLUMNS, check_duplicates, collect_tree, manifest_rows
from .manifests import write_csv
from .problems import ProblemList, check_data_folder
from .runner import PrepResult

logger = logging.getLogger(__name__)

PREP_VERSION = 1
FOLDS = {"10min": ["1h/0"],
         "1h": [f"1h/{k}" for k in range(6)],
         "10h": [f"1h/{k}" for k in range(6)] + ["9h"]}
QUALITIES = ("clean", "other")
DEFAULT_SUBSETS = ("10h", "1h", "10min")


def subset_folders(subset):
    """Folders (relative to ``data_folder``) that make up ``subset``.

    >>> subset_folders("10min")
    ['1h/0/clean', '1h/0/other']
    >>> len(subset_folders("10h"))
    14
    """
    if subset not in FOLDS:
        raise ValueError(f"unknown Libri-light subset {subset!r}; expected one of "
                         f"{sorted(FOLDS)}")
    return [f"{fold}/{quality}" for fold in FOLDS[subset] for quality in QUALITIES]


def csv_name(subset):
    """File name of a subset's manifest.

    >>> csv_name("1h")
    'librilight-1h.csv'
    """
    return f"librilight-{subset}.csv"


def prepare_librilight(data_folder, save_folder, subsets=DEFAULT_SUBSETS, skip_prep=False,
                       skip_bad_files=False, num_workers=None, sample_rate=SAMPLE_RATE,
                       progress=True):
    """Write ``save_folder/librilight-<subset>.csv`` for each subset.

    Arguments are those of :func:`data_prep.librispeech.prepare_librispeech`
    with ``subsets`` (some of ``"10h"``, ``"1h"``, ``"10min"``) instead of
    splits and ``data_folder`` the ``librispeech_finetuning`` folder.

    Returns
    -------
    PrepResult or None (with ``skip_prep``)

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_librilight(tempfile.mkdtemp(), tempfile.mkdtemp(), ["10min"])
    ... except DataPreparationError as err:
    ...     print(len(err.problems), err.problems[0].what)
    2 Libri-light folder does not exist
    """
    if skip_prep:
        logger.info("Libri-light preparation skipped (skip_prep=True)")
        return None
    subsets = [subsets] if isinstance(subsets, str) else list(dict.fromkeys(subsets))
    folders_of = {s: subset_folders(s) for s in subsets}
    data_folder = os.path.abspath(data_folder)
    save_folder = Path(save_folder)
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "version": PREP_VERSION}
    record = DoneRecord(save_folder, "librilight")
    csv_files = {s: str(save_folder / csv_name(s)) for s in subsets}
    todo = [s for s in subsets if not record.is_done(s, options, [csv_files[s]])]
    reused = [s for s in subsets if s not in todo]
    if reused:
        logger.info("Libri-light: %s up to date in %s, skipped", reused, save_folder)
    skipped = []
    if todo:
        problems = ProblemList("Libri-light preparation")
        groups = {}
        needed = list(dict.fromkeys(f for s in todo for f in folders_of[s]))
        if check_data_folder(data_folder, problems,
                             "pass the librispeech_finetuning folder"):
            for folder in needed:
                path = os.path.join(data_folder, folder)
                if os.path.isdir(path):
                    groups[folder] = collect_tree(path, problems)
                else:
                    problems.add(path, "Libri-light folder does not exist", fatal=True)
        check_duplicates(groups, problems)
        paths = [u.path for utts in groups.values() for u in utts]
        scan = scan_audio(paths, sample_rate, num_workers, progress,
                          desc="Libri-light " + "+".join(todo))
        problems.extend(scan.problems)
        problems.enforce(skip_bad_files, report_folder=save_folder)
        skipped = list(problems)
        record.forget(todo)
        bad = problems.bad_paths()
        for subset in todo:
            utterances = sorted((u for f in folders_of[subset] for u in groups[f]),
                                key=lambda u: u.uid)
            count = write_csv(csv_files[subset],
                              manifest_rows(utterances, scan.frames, data_folder,
                                            sample_rate, bad), CSV_COLUMNS)
            record.mark_done(subset, options)
            logger.info("Libri-light %s: %d utterances -> %s", subset, count,
                        csv_files[subset])
    return PrepResult(csv_files, todo, reused, skipped)


def main(argv=None):
    parser = cli_parser("librilight",
                        "Write SpeechBrain CSVs for the Libri-light 10h/1h/10min sets.",
                        "the librispeech_finetuning folder (holding 1h/ and 9h/)")
    parser.add_argument("--subsets", nargs="+", default=list(DEFAULT_SUBSETS),
                        choices=sorted(FOLDS))
    return run_cli(parser, argv, prepare_librilight)


if __name__ == "__main__":
    sys.exit(main())
