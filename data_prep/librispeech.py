"""LibriSpeech preparation: one SpeechBrain CSV per split.

Input layout (the corpus as distributed; ``data_folder`` is the folder that
holds the split folders, e.g. ``.../LibriSpeech``)::

    data_folder/<split>/<SPK>/<CHAPTER>/<SPK>-<CHAPTER>-<UTT>.flac
    data_folder/<split>/<SPK>/<CHAPTER>/<SPK>-<CHAPTER>.trans.txt

Output: ``save_folder/<split>.csv`` with columns ``ID,duration,wav,spk_id,wrd``
(``wav`` is ``$data_root/<split>/...``; load with
``DynamicItemDataset.from_csv(csv, replacements={"data_root": data_folder})``;
``wrd`` is the upper-case transcript), rows sorted by ID.

Audio headers are read (in parallel, see ``data_prep.audio_scan.scan_audio``)
and each transcript file is parsed once: the 281k files of the 960 h take
well under a minute with a warm page cache (``benchmarks/prep_speed.py``).
Files stored as float (which can hold NaN / Inf) are also decoded in full;
LibriSpeech's 16-bit FLAC cannot, so by default nothing is decoded.
``full_decode=True`` (``--full_decode``) decodes every file, which also finds
damaged data behind a good header, at ~30x the cost of the header scan
(about 0.5 s of one core per hour of audio). Bad inputs follow the policy
of ``data_prep.problems``: by default the preparation stops before writing
anything and lists every offending file; ``skip_bad_files=True`` leaves them
out.

Command line::

    python -m data_prep.librispeech --data_folder data/mini/LibriSpeech \\
        --save_folder results/prep --splits train-clean-100 dev-clean test-clean
"""
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .audio_scan import DEFAULT_FULL_DECODE, full_decode_mode, scan_audio
from .cli import cli_parser, run_cli
from .done_record import DoneRecord
from .manifests import format_seconds, merge_csvs, relative_to_root, write_csv
from .problems import ProblemList, check_data_folder
from .runner import PrepResult

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id", "wrd"]
SPLITS = ("train-clean-100", "train-clean-360", "train-other-500",
          "dev-clean", "dev-other", "test-clean", "test-other")
SHORTHANDS = {"960": ("train-clean-100", "train-clean-360", "train-other-500")}
DEFAULT_SPLITS = ("train-clean-100", "dev-clean", "test-clean")


@dataclass(frozen=True)
class Utterance:
    """One transcribed recording of a LibriSpeech-style tree."""

    uid: str
    path: str
    spk_id: str
    chapter: str
    text: str


def expand_splits(splits):
    """Split names with the shorthand ``"960"`` expanded, duplicates removed.

    >>> expand_splits(["960", "dev-clean", "train-clean-100"])
    ['train-clean-100', 'train-clean-360', 'train-other-500', 'dev-clean']
    >>> expand_splits("dev-clean")
    ['dev-clean']
    """
    if isinstance(splits, str):
        splits = [splits]
    out = []
    for split in splits:
        for name in SHORTHANDS.get(str(split), (str(split),)):
            if name not in out:
                out.append(name)
    return out


def _parse_transcripts(trans_path, prefix, problems):
    """``{uid: (line number, text)}`` of one ``SPK-CH.trans.txt``."""
    entries = {}
    try:
        with open(trans_path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        problems.add(trans_path, f"unreadable transcript file ({err})")
        return entries
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        uid, _, text = line.strip().partition(" ")
        text = " ".join(text.split()).upper()
        if not uid.startswith(prefix):
            problems.add(trans_path, f"line {number}: utterance id {uid!r} does not "
                                     f"start with {prefix!r} (the folder's speaker-chapter)")
        elif not text:
            problems.add(trans_path, f"line {number}: utterance {uid} has an empty transcript")
        elif uid in entries:
            problems.add(trans_path, f"line {number}: utterance {uid} listed twice "
                                     f"(first on line {entries[uid][0]})")
        else:
            entries[uid] = (number, text)
    return entries


def collect_tree(root, problems, audio_ext=".flac"):
    """Walk a LibriSpeech-style tree ``root/SPK/CHAPTER/`` and pair audio
    files with transcript lines.

    Returns the :class:`Utterance` s that have both (sorted by ID) and adds
    a problem to ``problems`` for every transcript line without audio, audio
    without transcript, malformed transcript line or misplaced file. Audio is
    not opened here (see :func:`data_prep.audio_scan.scan_audio`).

    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "19", "198"))
    >>> _ = open(os.path.join(root, "19", "198", "19-198-0000.flac"), "w")
    >>> with open(os.path.join(root, "19", "198", "19-198.trans.txt"), "w") as f:
    ...     _ = f.write("19-198-0000 HELLO WORLD\\n19-198-0001 NO AUDIO\\n")
    >>> problems = ProblemList()
    >>> [(u.uid, u.spk_id, u.chapter, u.text) for u in collect_tree(root, problems)]
    [('19-198-0000', '19', '198', 'HELLO WORLD')]
    >>> [p.what for p in problems]
    ['listed in 19-198.trans.txt line 2 but the audio file is missing']
    """
    utterances = []
    root = str(root)
    for spk_entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not spk_entry.is_dir():
            continue
        for ch_entry in sorted(os.scandir(spk_entry.path), key=lambda e: e.name):
            if not ch_entry.is_dir():
                continue
            spk, chapter, folder = spk_entry.name, ch_entry.name, ch_entry.path
            prefix = f"{spk}-{chapter}-"
            names = os.listdir(folder)
            audio = {n[: -len(audio_ext)] for n in names if n.endswith(audio_ext)}
            trans_name = f"{spk}-{chapter}.trans.txt"
            if trans_name in names:
                entries = _parse_transcripts(os.path.join(folder, trans_name), prefix,
                                             problems)
            else:
                entries = {}
            for uid, (number, text) in entries.items():
                path = os.path.join(folder, uid + audio_ext)
                if uid in audio:
                    utterances.append(Utterance(uid, path, spk, chapter, text))
                else:
                    problems.add(path, f"listed in {trans_name} line {number} but the "
                                       "audio file is missing")
            for uid in sorted(audio - set(entries)):
                path = os.path.join(folder, uid + audio_ext)
                if not uid.startswith(prefix):
                    problems.add(path, f"file name does not start with {prefix!r} "
                                       "(the folder's speaker-chapter)")
                elif trans_name in names:
                    problems.add(path, f"audio file has no line in {trans_name}")
                else:
                    problems.add(path, f"no transcript: {trans_name} is missing "
                                       "from this folder")
    utterances.sort(key=lambda u: u.uid)
    return utterances


def check_duplicates(groups, problems):
    """Add a problem for utterance IDs found in more than one group
    (``{name: [Utterance]}``); IDs must be unique within one manifest."""
    seen = {}
    for name, utterances in groups.items():
        for utt in utterances:
            if utt.uid in seen and seen[utt.uid] != utt.path:
                problems.add(utt.path, f"utterance id {utt.uid} also found at "
                                       f"{seen[utt.uid]}")
            seen.setdefault(utt.uid, utt.path)


def manifest_rows(utterances, frames, data_folder, sample_rate=SAMPLE_RATE, bad=()):
    """CSV rows (``ID,duration,wav,spk_id,wrd``) for scanned utterances;
    those in ``bad`` or not scanned are left out."""
    bad = set(bad)
    for utt in utterances:
        if utt.path in bad or utt.path not in frames:
            continue
        yield {"ID": utt.uid,
               "duration": format_seconds(frames[utt.path], sample_rate),
               "wav": relative_to_root(utt.path, data_folder),
               "spk_id": utt.spk_id,
               "wrd": utt.text}


def _missing_split(data_folder, split):
    available = sorted(e.name for e in os.scandir(data_folder) if e.is_dir())
    what = f"split folder does not exist (sub-folders of {data_folder}: {available})"
    nested = os.path.join(data_folder, "LibriSpeech")
    if os.path.isdir(os.path.join(nested, split)):
        what += f"; did you mean data_folder={nested}?"
    return what


def prepare_librispeech(data_folder, save_folder, splits=DEFAULT_SPLITS, skip_prep=False,
                        skip_bad_files=False, num_workers=None, sample_rate=SAMPLE_RATE,
                        merge_name=None, progress=True, full_decode=DEFAULT_FULL_DECODE):
    """Write ``save_folder/<split>.csv`` (``ID,duration,wav,spk_id,wrd``) for
    every split.

    Arguments
    ---------
    data_folder : str
        Folder holding the split folders (``train-clean-100/`` ...).
    save_folder : str
        Where the CSVs (and ``librispeech_prep_options.json``) go.
    splits : sequence of str
        Split folder names; ``"960"`` means the three training splits.
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out bad audio files / unmatched transcripts (logged and
        counted) instead of raising :class:`DataPreparationError`. A missing
        data folder or split always raises.
    num_workers : int, optional
        Processes scanning audio headers (default: every core).
    sample_rate : int
        Expected sample rate of every file.
    merge_name : str, optional
        Also write ``save_folder/<merge_name>.csv`` with all the splits.
    progress : bool
        Show a progress bar while scanning (on a terminal).
    full_decode : bool or "float"
        Which files are decoded sample by sample to find NaN / Inf samples,
        undecodable data and truncated files (see
        ``data_prep.audio_scan.scan_audio``): ``"float"`` (default) only files
        stored as float, ``True`` every file, ``False`` none.

    Returns
    -------
    PrepResult or None (with ``skip_prep``)

    Splits already prepared from the same folder with the same options
    (``full_decode`` included: a header-only run does not stand for a full
    decode) are not prepared again (see ``data_prep.done_record.DoneRecord``).

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_librispeech("/no/such/LibriSpeech", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].path, "|", err.problems[0].what)
    /no/such/LibriSpeech | data folder does not exist (pass the folder that holds train-clean-100/, dev-clean/ ...)
    """
    if skip_prep:
        logger.info("LibriSpeech preparation skipped (skip_prep=True)")
        return None
    splits = expand_splits(splits)
    if not splits:
        raise ValueError("prepare_librispeech: no split given")
    data_folder = os.path.abspath(data_folder)
    save_folder = Path(save_folder)
    problems = ProblemList("LibriSpeech preparation")
    full_decode = full_decode_mode(full_decode)
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "full_decode": full_decode,
               "version": PREP_VERSION}
    record = DoneRecord(save_folder, "librispeech")
    csv_files = {s: str(save_folder / f"{s}.csv") for s in splits}
    todo = [s for s in splits if not record.is_done(s, options, [csv_files[s]])]
    reused = [s for s in splits if s not in todo]
    if reused:
        logger.info("LibriSpeech: %s up to date in %s, skipped", reused, save_folder)
    skipped = []
    if todo:
        hint = "pass the folder that holds train-clean-100/, dev-clean/ ..."
        groups = {}
        if check_data_folder(data_folder, problems, hint):
            for split in todo:
                split_dir = os.path.join(data_folder, split)
                if not os.path.isdir(split_dir):
                    problems.add(split_dir, _missing_split(data_folder, split), fatal=True)
                    continue
                groups[split] = collect_tree(split_dir, problems)
                if not groups[split] and not any(p.path.startswith(split_dir)
                                                 for p in problems):
                    problems.add(split_dir, "split folder holds no .flac files "
                                            "with transcripts", fatal=True)
        check_duplicates(groups, problems)
        paths = [u.path for utts in groups.values() for u in utts]
        scan = scan_audio(paths, sample_rate, num_workers, progress,
                          desc=f"LibriSpeech {'+'.join(todo)}", full_decode=full_decode)
        if scan.decoded:
            logger.info("LibriSpeech: decoded %d of %d files in full (full_decode=%r)",
                        scan.decoded, len(paths), full_decode)
        problems.extend(scan.problems)
        problems.enforce(skip_bad_files, report_folder=save_folder)
        skipped = list(problems)
        record.forget(todo)
        bad = problems.bad_paths()
        for split in todo:
            count = write_csv(csv_files[split],
                              manifest_rows(groups[split], scan.frames, data_folder,
                                            sample_rate, bad), CSV_COLUMNS)
            record.mark_done(split, options)
            logger.info("LibriSpeech %s: %d utterances -> %s", split, count,
                        csv_files[split])
    if merge_name:
        merged = str(save_folder / f"{merge_name}.csv")
        merge_csvs([csv_files[s] for s in splits], merged)
        csv_files[merge_name] = merged
    return PrepResult(csv_files, todo, reused, skipped)


def main(argv=None):
    parser = cli_parser("librispeech",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,wrd) for "
                        "LibriSpeech.",
                        "folder holding train-clean-100/, dev-clean/ ...")
    parser.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS),
                        help="split folders ('960' = the three training splits)")
    parser.add_argument("--merge_name", default=None,
                        help="also write <merge_name>.csv with every split")
    return run_cli(parser, argv, prepare_librispeech, decode_options=True)


if __name__ == "__main__":
    sys.exit(main())
