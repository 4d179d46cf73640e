"""LibriSpeech phoneme targets for phoneme recognition (PR, SUPERB).

Builds on ``data_prep.librispeech``: the LibriSpeech manifests
(``<split>.csv``, ``ID,duration,wav,spk_id,wrd``) are prepared (or reused)
with :func:`data_prep.librispeech.prepare_librispeech`, and every
transcript word is looked up in a pronunciation lexicon.

Lexicon: ``WORD<TAB>PH1 PH2 ...`` per line (any blank separates the word
from its phonemes), as ``librispeech-lexicon.txt`` (OpenSLR 11; the
synthetic corpus has one inside ``LibriSpeech/``, the default location).
Phonemes carry CMU stress digits (``AH0``, ``EY1``); the digits are
stripped, leaving the 39 ARPAbet phonemes (``ARPABET``). A word with several
pronunciations keeps its first one.

Output: ``save_folder/<split>_phn.csv`` with columns
``ID,duration,wav,spk_id,wrd,phn``; ``phn`` is the utterance's phonemes,
blank separated, word after word (no silence or word-boundary symbol).

Bad inputs: a missing lexicon is fatal; a lexicon line without phonemes or
with a phoneme outside the 39, and every transcript word missing from the
lexicon (listed once, with how many utterances use it) are problems. They
are checked *before* anything is written (including the LibriSpeech
manifests): by default ``DataPreparationError`` lists them all; with
``skip_bad_files=True`` the bad lexicon lines are ignored and the
utterances that use a word without pronunciation are left out. Audio and
transcript problems are handled by ``prepare_librispeech`` (same policy).

Command line::

    python -m data_prep.librispeech_phonemes --data_folder data/mini/LibriSpeech \\
        --save_folder results/prep/librispeech --splits train-clean-100 dev-clean test-clean
"""
import logging
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

from speechbrain_ext.downstream.vocabulary import ARPABET
from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError, read_csv

from .cli import cli_parser, run_cli
from .done_record import DoneRecord
from .librispeech import (CSV_COLUMNS as LS_COLUMNS, DEFAULT_SPLITS, collect_tree, expand_splits,
                          prepare_librispeech)
from .manifests import write_csv
from .problems import ProblemList, check_data_folder
from .runner import PrepResult

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = LS_COLUMNS + ["phn"]
LEXICON_NAME = "librispeech-lexicon.txt"
_STRESS = re.compile(r"[012]$")


def strip_stress(phoneme):
    """``AH0`` -> ``AH``.

    >>> [strip_stress(p) for p in "HH AH0 L OW1".split()]
    ['HH', 'AH', 'L', 'OW']
    """
    return _STRESS.sub("", phoneme.upper())


def load_lexicon(path, problems):
    """``{WORD: [phonemes without stress]}`` of a lexicon file.

    A missing file is a fatal problem; bad lines are problems and left out.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "lexicon.txt")
    >>> _ = open(path, "w").write("HELLO\\tHH AH0 L OW1\\nHELLO\\tHH EH0 L OW1\\nODD\\tQQ1\\n")
    >>> problems = ProblemList()
    >>> load_lexicon(path, problems)
    {'HELLO': ['HH', 'AH', 'L', 'OW']}
    >>> [p.what for p in problems]
    ["line 3: phoneme(s) ['QQ1'] of 'ODD' are not among the 39 ARPAbet phonemes"]
    """
    lexicon = {}
    path = str(path)
    if not os.path.isfile(path):
        problems.add(path, "lexicon file does not exist (pass lexicon_file=...)", fatal=True)
        return lexicon
    known = set(ARPABET)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            word, phonemes = fields[0].upper(), fields[1:]
            if not phonemes:
                problems.add(path, f"line {number}: word {word!r} has no phonemes")
                continue
            unknown = [p for p in phonemes if strip_stress(p) not in known]
            if unknown:
                problems.add(path, f"line {number}: phoneme(s) {unknown} of {word!r} are not "
                                   "among the 39 ARPAbet phonemes")
                continue
            lexicon.setdefault(word, [strip_stress(p) for p in phonemes])
    return lexicon


def to_phonemes(words, lexicon):
    """Phoneme string of a transcript; raises ``KeyError`` naming the first
    word missing from ``lexicon``.

    >>> to_phonemes("HELLO HELLO", {"HELLO": ["HH", "AH", "L", "OW"]})
    'HH AH L OW HH AH L OW'
    """
    return " ".join(p for word in words.split() for p in lexicon[word])


def _fingerprint(path):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def prepare_librispeech_phonemes(data_folder, save_folder, splits=DEFAULT_SPLITS,
                                 lexicon_file=None, skip_prep=False, skip_bad_files=False,
                                 num_workers=None, sample_rate=SAMPLE_RATE,
                                 manifest_folder=None, progress=True):
    """Write ``save_folder/<split>_phn.csv`` (``ID,duration,wav,spk_id,wrd,
    phn``) for every split.

    Arguments
    ---------
    data_folder : str
        The ``LibriSpeech`` folder (holds the split folders).
    save_folder : str
        Where the phoneme CSVs go.
    splits : sequence of str
        LibriSpeech splits (``"960"`` = the three training splits).
    lexicon_file : str, optional
        Default: ``data_folder/librispeech-lexicon.txt``.
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out utterances with words missing from the lexicon (and bad
        audio, see ``prepare_librispeech``) instead of raising.
    num_workers : int, optional
        Processes scanning audio headers for the LibriSpeech manifests.
    sample_rate : int
        Expected sample rate of the audio.
    manifest_folder : str, optional
        Where the LibriSpeech manifests are (re)used or written; default
        ``save_folder``.
    progress : bool
        Progress bar while scanning.

    Returns
    -------
    data_prep.runner.PrepResult (``csv_files`` maps each split to its
    phoneme CSV) or None (with ``skip_prep``)

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_librispeech_phonemes("/no/such/LibriSpeech", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(sorted(p.what for p in err.problems)[0])
    data folder does not exist
    """
    if skip_prep:
        logger.info("LibriSpeech phoneme preparation skipped (skip_prep=True)")
        return None
    splits = expand_splits(splits)
    if not splits:
        raise ValueError("prepare_librispeech_phonemes: no split given")
    data_folder = os.path.abspath(data_folder)
    lexicon_file = os.path.abspath(lexicon_file or os.path.join(data_folder, LEXICON_NAME))
    save_folder = Path(save_folder)
    manifest_folder = Path(manifest_folder) if manifest_folder else save_folder
    csv_files = {s: str(save_folder / f"{s}_phn.csv") for s in splits}
    manifests = {s: str(manifest_folder / f"{s}.csv") for s in splits}
    record = DoneRecord(save_folder, "librispeech_phonemes")

    def options(split):
        return {"data_folder": data_folder, "lexicon": lexicon_file,
                "lexicon_stamp": _fingerprint(lexicon_file),
                "manifest": manifests[split], "manifest_stamp": _fingerprint(manifests[split]),
                "skip_bad_files": bool(skip_bad_files), "sample_rate": sample_rate,
                "version": PREP_VERSION}

    todo = [s for s in splits if not record.is_done(s, options(s), [csv_files[s]])]
    reused = [s for s in splits if s not in todo]
    if not todo:
        return PrepResult(csv_files, [], reused, [])

    # 1. lexicon coverage of the transcripts, before anything is written
    problems = ProblemList("LibriSpeech phoneme preparation")
    lexicon = load_lexicon(lexicon_file, problems)
    if check_data_folder(data_folder, problems):
        missing = defaultdict(list)  # word -> utterance ids
        for split in todo:
            split_dir = os.path.join(data_folder, split)
            if not os.path.isdir(split_dir):
                continue  # prepare_librispeech reports it
            for utt in collect_tree(split_dir, ProblemList()):
                for word in utt.text.split():
                    if word not in lexicon:
                        missing[word].append(utt.uid)
        if lexicon:  # with no lexicon, listing every word would only bury the cause
            for word in sorted(missing):
                uids = missing[word]
                problems.add(lexicon_file, f"no pronunciation for word {word!r} (used in "
                                           f"{len(uids)} utterance(s), e.g. {uids[0]})")
    problems.enforce(skip_bad_files, report_folder=save_folder)

    # 2. the LibriSpeech manifests (own checks, same policy)
    result = prepare_librispeech(data_folder, manifest_folder, todo, skip_bad_files=skip_bad_files,
                                 num_workers=num_workers, sample_rate=sample_rate,
                                 progress=progress)
    # 3. phoneme CSVs
    record.forget(todo)
    left_out = 0
    for split in todo:
        rows = []
        for row in read_csv(result.csv_files[split]):
            try:
                row["phn"] = to_phonemes(row["wrd"], lexicon)
            except KeyError:
                left_out += 1  # a word without pronunciation (skip_bad_files=True)
                continue
            rows.append(row)
        count = write_csv(csv_files[split], rows, CSV_COLUMNS)
        record.mark_done(split, options(split))
        logger.info("LibriSpeech phonemes %s: %d utterances -> %s", split, count,
                    csv_files[split])
    if left_out:
        logger.warning("LibriSpeech phonemes: left out %d utterance(s) with words missing "
                       "from the lexicon", left_out)
    return PrepResult(csv_files, todo, reused, list(problems) + list(result.skipped))


def main(argv=None):
    parser = cli_parser("librispeech_phonemes",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,wrd,phn) with 39 "
                        "ARPAbet phoneme targets for LibriSpeech.",
                        "folder holding train-clean-100/, dev-clean/ ...")
    parser.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS))
    parser.add_argument("--lexicon_file", default=None,
                        help=f"default: <data_folder>/{LEXICON_NAME}")
    parser.add_argument("--manifest_folder", default=None,
                        help="where the LibriSpeech manifests go (default: save_folder)")
    return run_cli(parser, argv, prepare_librispeech_phonemes,
                   "leave out bad files and utterances with unknown words")


if __name__ == "__main__":
    sys.exit(main())
