"""Common Voice preparation for ASR (here: Mandarin Chinese, zh-CN).

Input layout (one language of the corpus as distributed; ``data_folder`` is
the language folder, e.g. ``cv-corpus-<version>/zh-CN``)::

    data_folder/clips/<clip>.mp3
    data_folder/{train,dev,test}.tsv
        client_id path sentence up_votes down_votes age gender accents locale segment

The TSVs are tab separated and never quoted (a ``"`` is part of the
sentence); ``path`` is the clip's file name in ``clips/``.

Output: ``save_folder/{train,dev,test}.csv`` with columns
``ID,duration,wav,spk_id,wrd``: ``ID`` is the clip's stem
(``common_voice_zh-CN_18524189``), ``spk_id`` the ``client_id`` (speakers
are disjoint across the official splits), ``wrd`` the sentence as given
(blanks collapsed; punctuation kept, recipes normalise it for their
tokenizer).

Sample rate: the clips are MP3, which ``soundfile`` (libsndfile >= 1.1)
reads. Real Common Voice clips are 48 kHz, so ``sample_rate`` defaults to
48000 and every clip is checked against it; the synthetic corpus
(``data_prep.synthetic``) is 16 kHz, pass ``sample_rate=16000``
(``--sample_rate 16000``). The manifests do not change the audio: recipes
resample to the 16 kHz of the upstream model when the rate differs
(``torchaudio.transforms.Resample`` in the audio pipeline).

Bad inputs follow ``data_prep.problems``: a missing data folder or split TSV
is fatal; a TSV line whose clip is missing, an empty sentence, a clip
listed twice, an unreadable/empty clip or one at another sample rate is
listed (nothing written), or left out with ``skip_bad_files=True``.

Command line::

    python -m data_prep.common_voice --data_folder data/mini/cv-corpus-zh-CN \\
        --save_folder results/prep/common_voice_zh --sample_rate 16000
"""
import csv
import logging
import os
import sys

from speechbrain_ext.io.data import DataPreparationError

from .cli import cli_parser, run_cli
from .manifests import read_table, relative_to_root
from .problems import check_data_folder
from .runner import collected_entries, run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id", "wrd"]
METADATA_COLUMNS = ["client_id", "path", "sentence"]
SPLITS = ("train", "dev", "test")
CV_SAMPLE_RATE = 48000


def prepare_common_voice(data_folder, save_folder, splits=SPLITS, skip_prep=False,
                         skip_bad_files=False, num_workers=None,
                         sample_rate=CV_SAMPLE_RATE, progress=True):
    """Write ``{train,dev,test}.csv`` (``ID,duration,wav,spk_id,wrd``) for one
    Common Voice language.

    Arguments
    ---------
    data_folder : str
        The language folder (holds ``clips/`` and ``train.tsv`` ...).
    save_folder : str
        Where the CSVs go.
    splits : sequence of str
        TSV names without ``.tsv`` (default ``train dev test``; e.g.
        ``validated`` also works).
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out bad clips instead of raising ``DataPreparationError``.
    num_workers : int, optional
        Processes scanning audio headers (default: every core).
    sample_rate : int
        Expected sample rate of every clip: 48000 for the real corpus, 16000
        for the synthetic one.
    progress : bool
        Progress bar while scanning.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``)

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_common_voice("/no/such/folder", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the language folder, which holds clips/ and train.tsv ...)
    """
    if skip_prep:
        logger.info("Common Voice preparation skipped (skip_prep=True)")
        return None
    splits = [splits] if isinstance(splits, str) else list(splits)
    if not splits:
        raise ValueError("prepare_common_voice: no split given")
    data_folder = os.path.abspath(data_folder)
    outputs = {s: f"{s}.csv" for s in splits}
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "version": PREP_VERSION}

    def collect(todo, problems):
        hint = "pass the language folder, which holds clips/ and train.tsv ..."
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        entries, seen = {s: [] for s in todo}, {}
        for split in todo:
            tsv = os.path.join(data_folder, f"{split}.tsv")
            for line, row in read_table(tsv, problems, METADATA_COLUMNS, delimiter="\t",
                                        what="split TSV", quoting=csv.QUOTE_NONE):
                name = (row["path"] or "").strip()
                if not name:
                    problems.add(tsv, f"line {line}: empty path")
                    continue
                path = os.path.join(data_folder, "clips", name)
                where = f"{split}.tsv line {line}"
                sentence = " ".join((row["sentence"] or "").split())
                if path in seen:
                    problems.add(path, f"listed in {where} and in {seen[path]}")
                elif not os.path.isfile(path):
                    problems.add(path, f"listed in {where} but the audio file is missing")
                elif not sentence:
                    problems.add(path, f"empty sentence in {where}")
                else:
                    seen[path] = where
                    entries[split].append({
                        "ID": os.path.splitext(name)[0], "path": path,
                        "wav": relative_to_root(path, data_folder),
                        "spk_id": (row["client_id"] or "").strip(), "wrd": sentence})

        return collected_entries(entries, sample_rate, CSV_COLUMNS)

    return run_preparation("common_voice", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="Common Voice preparation")


def main(argv=None):
    parser = cli_parser("common_voice",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,wrd) for one Common "
                        "Voice language.",
                        "the language folder (holds clips/ and train.tsv ...)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS))
    parser.add_argument("--sample_rate", type=int, default=CV_SAMPLE_RATE,
                        help="expected sample rate (48000 real corpus, 16000 synthetic)")
    return run_cli(parser, argv, prepare_common_voice,
                   "leave out bad clips instead of stopping")


if __name__ == "__main__":
    sys.exit(main())
