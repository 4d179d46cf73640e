"""Shared machinery for every corpus preparation in ``data_prep``.

A preparation script (``prepare_X(data_folder, save_folder, ..., skip_prep)``)
is built from four pieces, all defined here:

* **Audio scanning** -- :func:`scan_audio` reads only the header of every
  audio file (``soundfile``, no samples decoded), in ``num_workers`` parallel
  processes with a progress bar, and checks that each file exists, is
  readable, is not empty, has the expected sample rate and is mono. It returns
  the number of frames of every good file and a list of :class:`Problem`.
* **The bad-input policy** -- problems found anywhere during a preparation
  (missing folder, missing split, unreadable/empty/wrong-rate audio,
  transcript lines without audio, audio without transcript ...) are collected
  in a :class:`ProblemList`. :meth:`ProblemList.enforce` is called *before
  anything is written*: by default it raises :class:`DataPreparationError`,
  whose message lists every offending path and what is wrong with it (the
  list is also written to a file when it is long); with
  ``skip_bad_files=True`` the bad files are left out, their number is logged,
  and the preparation carries on. Problems marked ``fatal`` (a missing data
  folder or split) always raise: leaving out a whole split is never what a
  recipe wants.
* **Skip-if-done** -- :class:`DoneRecord` is a small JSON file in
  ``save_folder`` that records, for every output (e.g. one CSV per split), the
  options it was made with. A re-run with the same options skips that output;
  a re-run with different options re-prepares it. ``skip_prep=True`` (the
  SpeechBrain convention) skips the preparation entirely.
* **Manifests** -- :func:`write_csv` writes a SpeechBrain CSV
  (``ID,duration,wav,...``) atomically (temporary file + ``os.replace``), and
  :func:`relative_to_root` turns absolute paths into ``$data_root/...`` so a
  manifest loads anywhere with
  ``DynamicItemDataset.from_csv(csv, replacements={"data_root": folder})``.

:func:`run_preparation` drives these for a corpus module, which supplies
only how to read its metadata (:func:`collected_entries` turns the usual
``{output: [row without duration]}`` into what it needs), and
:func:`cli_parser` + :func:`run_cli` give every module the same command
line (``--data_folder``, ``--save_folder``, ``--skip_bad_files``,
``--num_workers``; exit code 2 with the problem list on stderr).
"""
import argparse
import csv
import json
import logging
import multiprocessing
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DATA_ROOT_KEY = "data_root"
# Problems listed in full in the exception text; beyond this many they are
# also written to a file (terminals and CI logs cut long messages).
PROBLEMS_FILE_THRESHOLD = 20
_CHUNK = 256  # files per task sent to a scanning worker
MIN_FILES_PER_WORKER = 1000  # num_workers=None starts no more workers than this allows


class DataPreparationError(RuntimeError):
    """The input corpus cannot be prepared as it is.

    ``problems`` holds every :class:`Problem` found (the message lists them
    all)."""

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Problem:
    """One bad input: ``path`` (file or folder) and ``what`` is wrong with it.

    ``fatal`` problems (a missing folder or split) cannot be skipped.

    >>> str(Problem("/data/a.flac", "empty file (0 bytes)"))
    '/data/a.flac: empty file (0 bytes)'
    """

    path: str
    what: str
    fatal: bool = False

    def __str__(self):
        return f"{self.path}: {self.what}"


class ProblemList:
    """Collects :class:`Problem` s during a preparation and applies the
    bad-input policy once, before anything is written.

    >>> problems = ProblemList("toy preparation")
    >>> problems.add("/data/x.flac", "sample rate is 8000 Hz, expected 16000 Hz")
    >>> problems.bad_paths()
    {'/data/x.flac'}
    >>> try:
    ...     problems.enforce(skip_bad_files=False)
    ... except DataPreparationError as err:
    ...     print(str(err).splitlines()[1])
    ...
      /data/x.flac: sample rate is 8000 Hz, expected 16000 Hz
    >>> problems.enforce(skip_bad_files=True)  # logs and returns the count
    1
    """

    def __init__(self, what="data preparation"):
        self.what = what
        self.problems = []

    def add(self, path, what, fatal=False):
        self.problems.append(Problem(str(path), what, fatal))

    def extend(self, problems):
        self.problems.extend(problems)

    def __len__(self):
        return len(self.problems)

    def __iter__(self):
        return iter(self.problems)

    def bad_paths(self):
        """Paths with at least one problem (to leave out when skipping)."""
        return {p.path for p in self.problems}

    def enforce(self, skip_bad_files=False, report_folder=None):
        """Raise :class:`DataPreparationError` listing every problem, unless
        ``skip_bad_files`` is set and none is fatal; then log them and return
        how many bad inputs are skipped.

        With more than ``PROBLEMS_FILE_THRESHOLD`` problems the full list is
        also written to ``report_folder/<what>_problems.txt`` (or a temporary
        file) and that file is named in the message. This report is the only
        thing written when the preparation fails."""
        if not self.problems:
            return 0
        fatal = [p for p in self.problems if p.fatal]
        if skip_bad_files and not fatal:
            for problem in self.problems:
                logger.warning("skipping %s", problem)
            logger.warning("%s: skipped %d bad input(s) (skip_bad_files=True)",
                           self.what, len(self.problems))
            return len(self.problems)
        listing = "\n".join(f"  {p}" for p in self.problems)
        if fatal:
            hint = ("nothing was written; missing folders or splits cannot be "
                    "skipped, not even with skip_bad_files=True: check the data "
                    "folder and the split names")
        else:
            hint = ("nothing was written; fix or remove these files, or pass "
                    "skip_bad_files=True to leave the bad files out")
        header = f"{self.what}: {len(self.problems)} problem(s) found ({hint}):"
        report = self._write_report(header, listing, report_folder)
        if report is not None:
            header += f"\n(the same list is in {report})"
        logger.error("%s (listed in the exception)", header)
        raise DataPreparationError(f"{header}\n{listing}", self.problems)

    def _write_report(self, header, listing, report_folder):
        if len(self.problems) <= PROBLEMS_FILE_THRESHOLD:
            return None
        name = "".join(c if c.isalnum() else "_" for c in self.what) + "_problems.txt"
        try:
            folder = Path(report_folder) if report_folder else Path(tempfile.gettempdir())
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"{header}\n{listing}\n", encoding="utf-8")
            return path
        except OSError:
            return None


# ---------------------------------------------------------------- audio scan
def probe_audio(path, sample_rate=SAMPLE_RATE):
    """Read the header of one audio file.

    Returns ``(frames, None)`` for a good file or ``(None, what_is_wrong)``.
    Only the header is read (``soundfile.SoundFile``, the call behind
    ``soundfile.info``): the samples are never decoded.

    >>> import numpy as np, soundfile, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> good = os.path.join(folder, "good.flac")
    >>> soundfile.write(good, np.zeros(1600), 16000)
    >>> probe_audio(good)
    (1600, None)
    >>> probe_audio(os.path.join(folder, "missing.flac"))
    (None, 'file does not exist')
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return None, "file does not exist"
    except OSError as err:
        return None, f"cannot access file ({err.strerror})"
    if size == 0:
        return None, "empty file (0 bytes)"
    try:
        with sf.SoundFile(path) as audio:
            frames, rate, channels = audio.frames, audio.samplerate, audio.channels
    except Exception as err:  # libsndfile raises several types
        detail = str(err).split(":")[-1].strip() or type(err).__name__
        return None, f"unreadable audio ({detail})"
    if frames <= 0:
        return None, "no audio frames (0 frames)"
    if sample_rate is not None and rate != sample_rate:
        return None, f"sample rate is {rate} Hz, expected {sample_rate} Hz"
    if channels != 1:
        return None, f"{channels} channels, expected mono"
    return int(frames), None


def _probe_chunk(args):
    paths, sample_rate = args
    return [(path, *probe_audio(path, sample_rate)) for path in paths]


@dataclass
class ScanResult:
    """Output of :func:`scan_audio`: ``frames`` maps every good path to its
    number of frames; ``problems`` lists the bad ones."""

    frames: dict
    problems: list
    sample_rate: int

    def duration(self, path):
        """Duration of a good file in seconds."""
        return self.frames[path] / self.sample_rate

    @property
    def total_seconds(self):
        return sum(self.frames.values()) / self.sample_rate


def default_workers():
    """Worker processes to use when ``num_workers`` is None: every core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def scan_audio(paths, sample_rate=SAMPLE_RATE, num_workers=None, progress=True,
               desc="scanning audio"):
    """Check and measure audio files in parallel, reading headers only.

    Arguments
    ---------
    paths : iterable of str
        Audio files.
    sample_rate : int
        Expected sample rate (files at another rate are problems); None
        accepts any rate.
    num_workers : int, optional
        Worker processes; 0 or 1 scans in this process. None uses every
        core, but one per ``MIN_FILES_PER_WORKER`` files at most (starting a
        pool costs more than scanning a few hundred headers).
    progress : bool
        Show a tqdm progress bar (only when stderr is a terminal).

    Returns
    -------
    ScanResult

    Example
    -------
    >>> import numpy as np, soundfile, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> soundfile.write(os.path.join(folder, "a.flac"), np.zeros(800), 16000)
    >>> soundfile.write(os.path.join(folder, "b.flac"), np.zeros(800), 8000)
    >>> result = scan_audio([os.path.join(folder, n) for n in ("a.flac", "b.flac")],
    ...                     num_workers=1, progress=False)
    >>> [round(result.duration(p), 3) for p in result.frames]
    [0.05]
    >>> [p.what for p in result.problems]
    ['sample rate is 8000 Hz, expected 16000 Hz']
    """
    from tqdm import tqdm

    paths = [str(p) for p in paths]
    if num_workers is None:  # every core, but a pool only pays off on many files
        workers = min(default_workers(), len(paths) // MIN_FILES_PER_WORKER)
    else:
        workers = int(num_workers)
    workers = max(1, min(workers, len(paths)))
    # small enough tasks to keep every worker busy until the end
    size = max(1, min(_CHUNK, -(-len(paths) // (8 * workers))))
    chunks = [(paths[i:i + size], sample_rate) for i in range(0, len(paths), size)]
    frames, problems = {}, []
    bar = tqdm(total=len(paths), desc=desc, unit="file",
               disable=(not progress) or None, leave=False)
    pool = None
    try:
        if workers > 1:
            pool = multiprocessing.get_context().Pool(workers)
            results = pool.imap_unordered(_probe_chunk, chunks)
        else:
            results = map(_probe_chunk, chunks)
        for chunk in results:
            for path, n_frames, what in chunk:
                if what is None:
                    frames[path] = n_frames
                else:
                    problems.append(Problem(path, what))
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    # workers finish in any order: report in the order of ``paths``
    order = {path: k for k, path in enumerate(paths)}
    frames = dict(sorted(frames.items(), key=lambda item: order[item[0]]))
    problems.sort(key=lambda p: order[p.path])
    return ScanResult(frames, problems, sample_rate)


# ------------------------------------------------------------ skip-if-done
def _normalise(options):
    """JSON round trip, so tuples/lists and Paths/strings compare equal."""
    return json.loads(json.dumps(options, sort_keys=True, default=str))


class DoneRecord:
    """Remembers which outputs of a preparation are done, and with which
    options, in ``save_folder/<name>_prep_options.json``.

    Each output is keyed separately (e.g. one key per split), so preparing
    ``dev-clean`` after ``train-clean-100`` does not redo the latter.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> csv_file = os.path.join(folder, "dev.csv")
    >>> record = DoneRecord(folder, "toy")
    >>> options = {"data_folder": "/data", "sample_rate": 16000}
    >>> record.is_done("dev", options, [csv_file])
    False
    >>> open(csv_file, "w").close()
    >>> record.mark_done("dev", options)
    >>> DoneRecord(folder, "toy").is_done("dev", options, [csv_file])
    True
    >>> record.is_done("dev", {**options, "sample_rate": 8000}, [csv_file])
    False
    """

    def __init__(self, save_folder, name):
        self.path = Path(save_folder) / f"{name}_prep_options.json"
        self._entries = self._load()

    def _load(self):
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def is_done(self, key, options, outputs=()):
        """True if ``key`` was prepared with ``options`` and every file in
        ``outputs`` still exists."""
        return (self._entries.get(key) == _normalise(options)
                and all(Path(o).is_file() for o in outputs))

    def forget(self, keys):
        """Mark ``keys`` as not done (call before rewriting their outputs, so
        an interrupted run is never mistaken for a finished one)."""
        if any(k in self._entries for k in keys):
            for key in keys:
                self._entries.pop(key, None)
            self._save()

    def mark_done(self, key, options):
        self._entries[key] = _normalise(options)
        self._save()

    def _save(self):
        atomic_write_text(self.path, json.dumps(self._entries, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------- writing
def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(path, rows, fieldnames):
    """Write a SpeechBrain CSV manifest atomically (never a half-written file).

    ``rows`` are dicts with at least ``ID`` (unique) and every key in
    ``fieldnames``; ``fieldnames`` must start with ``ID``. Returns the number
    of rows.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
    >>> write_csv(path, [{"ID": "u1", "duration": 1.5, "wav": "$data_root/u1.flac"}],
    ...           ["ID", "duration", "wav"])
    1
    >>> print(open(path).read().strip())
    ID,duration,wav
    u1,1.5,$data_root/u1.flac
    """
    fieldnames = list(fieldnames)
    if not fieldnames or fieldnames[0] != "ID":
        raise ValueError(f"CSV columns must start with 'ID', got {fieldnames}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore",
                                    lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return count


def read_csv(path):
    """Rows of a manifest as a list of dicts (strings), in file order.

    ``$data_root`` is kept as is (see :func:`resolve_data_root`)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def relative_to_root(path, data_folder):
    """``$data_root/<path relative to data_folder>`` (POSIX separators).

    >>> relative_to_root("/corpora/LibriSpeech/dev-clean/1/2/1-2-0000.flac",
    ...                  "/corpora/LibriSpeech")
    '$data_root/dev-clean/1/2/1-2-0000.flac'
    """
    path, root = os.fspath(path), os.fspath(data_folder).rstrip(os.sep)
    if path.startswith(root + os.sep):  # fast path (the common case)
        rel = path[len(root) + 1:]
    else:
        rel = os.path.relpath(path, root)
    rel = rel.replace(os.sep, "/")
    if rel == ".." or rel.startswith("../"):
        raise ValueError(f"{path} is not inside data_folder {data_folder}")
    return f"${DATA_ROOT_KEY}/{rel}"


def resolve_data_root(value, data_root):
    """Replace ``$data_root`` in ``value`` by ``data_root``.

    >>> resolve_data_root("$data_root/a.flac", "/corpora")
    '/corpora/a.flac'
    """
    return value.replace(f"${DATA_ROOT_KEY}", str(data_root))


def format_seconds(frames, sample_rate=SAMPLE_RATE):
    """Duration string exact to the sample (1/16000 s needs 7 decimals).

    >>> format_seconds(16001)
    '1.0000625'
    """
    text = f"{frames / sample_rate:.7f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def check_data_folder(data_folder, problems, hint=""):
    """Add a fatal problem if ``data_folder`` is not a folder; returns
    whether it is one."""
    folder = Path(data_folder)
    if folder.is_dir():
        return True
    what = "data folder does not exist" if not folder.exists() else "not a folder"
    problems.add(folder, what + (f" ({hint})" if hint else ""), fatal=True)
    return False


@dataclass
class PrepResult:
    """What a ``prepare_*`` call did.

    ``csv_files`` maps each requested output (split/subset) to its CSV;
    ``prepared`` and ``reused`` name the outputs written now and those found
    up to date; ``skipped`` lists the bad inputs left out
    (``skip_bad_files=True``)."""

    csv_files: dict
    prepared: list
    reused: list
    skipped: list

    @property
    def skipped_count(self):
        return len(self.skipped)


def merge_csvs(inputs, output):
    """Concatenate manifests with the same header into ``output`` (atomic).

    Returns the number of rows.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("a", "b"):
    ...     _ = write_csv(os.path.join(folder, name + ".csv"),
    ...                   [{"ID": name, "duration": 1.0}], ["ID", "duration"])
    >>> merge_csvs([os.path.join(folder, n + ".csv") for n in ("a", "b")],
    ...            os.path.join(folder, "ab.csv"))
    2
    """
    rows, header = [], None
    for path in inputs:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if header is None:
                header = reader.fieldnames
            elif reader.fieldnames != header:
                raise ValueError(f"{path} has columns {reader.fieldnames}, "
                                 f"expected {header} (as in {inputs[0]})")
            rows.extend(reader)
    if header is None:
        raise ValueError("merge_csvs needs at least one input CSV")
    return write_csv(output, rows, header)


# ------------------------------------------------- generic preparation driver
def read_table(path, problems, required, delimiter=",", what="metadata file",
               quoting=csv.QUOTE_MINIMAL):
    """Rows of a CSV/TSV metadata file as ``[(line number, dict)]``.

    A missing or unreadable file, or one whose header lacks a column of
    ``required``, is a fatal problem (a whole split or label set would be
    missing) and ``[]`` is returned. ``quoting=csv.QUOTE_NONE`` reads files
    whose fields are never quoted (Common Voice TSVs).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "meta.tsv")
    >>> _ = open(path, "w").write("path\\tsentence\\na.mp3\\thello\\n")
    >>> read_table(path, ProblemList(), ["path", "sentence"], delimiter="\\t")
    [(2, {'path': 'a.mp3', 'sentence': 'hello'})]
    >>> problems = ProblemList()
    >>> read_table(path + ".missing", problems, ["path"])
    []
    >>> [p.what for p in problems]
    ['metadata file does not exist']
    """
    path = str(path)
    if not os.path.isfile(path):
        problems.add(path, f"{what} does not exist", fatal=True)
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
            header = reader.fieldnames or []
            lacking = [c for c in required if c not in header]
            if lacking:
                problems.add(path, f"{what} lacks column(s) {lacking} (header: {header})",
                             fatal=True)
                return []
            # the header is line 1; a row's line is the reader's line after it
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        problems.add(path, f"unreadable {what} ({err})", fatal=True)
        return []


def run_preparation(name, save_folder, outputs, options, collect, skip_bad_files=False,
                    num_workers=None, sample_rate=SAMPLE_RATE, progress=True,
                    what=None):
    """Drive one preparation: skip-if-done, audio scan, bad-input policy,
    atomic writing. Corpus modules supply only the corpus-specific parts.

    Arguments
    ---------
    name : str
        Short corpus name (``DoneRecord`` file ``<name>_prep_options.json``).
    save_folder : str
        Where the CSVs go.
    outputs : dict
        ``{key: csv file name}``; each key is recorded as done separately.
    options : dict
        Everything the outputs depend on (data folder, task options ...).
    collect : callable
        ``collect(todo_keys, problems) -> (audio_paths, build)``: reads the
        metadata (adding problems), returns the audio files to scan and a
        function ``build(scan, problems) -> {key: (rows, columns)}`` called
        after the scan. ``build`` must leave out every path in
        ``problems.bad_paths()`` and any input it adds a problem for itself.
    skip_bad_files, num_workers, sample_rate, progress
        As in :func:`scan_audio` / :meth:`ProblemList.enforce`.
    what : str, optional
        Name used in messages (default ``"<name> preparation"``).

    Returns
    -------
    PrepResult

    Nothing is written unless every problem is skippable and
    ``skip_bad_files`` is set, or there is none.
    """
    what = what or f"{name} preparation"
    save_folder = Path(save_folder)
    record = DoneRecord(save_folder, name)
    csv_files = {key: str(save_folder / file) for key, file in outputs.items()}
    todo = [k for k in outputs if not record.is_done(k, options, [csv_files[k]])]
    reused = [k for k in outputs if k not in todo]
    if reused:
        logger.info("%s: %s up to date in %s, skipped", what, reused, save_folder)
    if not todo:
        return PrepResult(csv_files, [], reused, [])
    problems = ProblemList(what)
    paths, build = collect(list(todo), problems)
    paths = list(dict.fromkeys(str(p) for p in paths))  # unique, in order
    if any(p.fatal for p in problems):  # no point scanning audio
        problems.enforce(skip_bad_files, report_folder=save_folder)
    scan = scan_audio(paths, sample_rate, num_workers, progress, desc=what)
    problems.extend(scan.problems)
    tables = build(scan, problems)
    problems.enforce(skip_bad_files, report_folder=save_folder)
    record.forget(todo)
    for key in todo:
        rows, columns = tables[key]
        count = write_csv(csv_files[key], rows, columns)
        record.mark_done(key, options)
        logger.info("%s %s: %d rows -> %s", what, key, count, csv_files[key])
    return PrepResult(csv_files, todo, reused, list(problems))


def tables_from_entries(entries, scan, problems, sample_rate, columns):
    """The ``{key: (rows, columns)}`` tables of ``entries`` (``{key: [entry]}``).

    Every entry is a dict with ``ID``, ``path`` (its audio file) and the
    other columns but ``duration``; a row is the entry plus its duration.
    Entries whose path is in ``problems.bad_paths()`` or was not scanned
    are left out; rows are sorted by ``ID``.

    >>> from types import SimpleNamespace
    >>> scan = SimpleNamespace(frames={"/a.wav": 8000, "/b.wav": 16000})
    >>> problems = ProblemList()
    >>> problems.add("/b.wav", "bad")
    >>> tables_from_entries({"dev": [{"ID": "a", "path": "/a.wav"},
    ...                              {"ID": "b", "path": "/b.wav"}]},
    ...                     scan, problems, 16000, ["ID", "duration"])
    {'dev': ([{'ID': 'a', 'path': '/a.wav', 'duration': '0.5'}], ['ID', 'duration'])}
    """
    bad = problems.bad_paths()
    tables = {}
    for key, items in entries.items():
        rows = [{**e, "duration": format_seconds(scan.frames[e["path"]], sample_rate)}
                for e in items if e["path"] not in bad and e["path"] in scan.frames]
        tables[key] = (sorted(rows, key=lambda r: r["ID"]), columns)
    return tables


def collected_entries(entries, sample_rate, columns):
    """What a ``collect`` of :func:`run_preparation` returns for ``entries``
    (``{key: [entry]}``, see :func:`tables_from_entries`): every entry's
    audio path, and a ``build`` that makes the tables of the entries."""

    def build(scan, problems):
        return tables_from_entries(entries, scan, problems, sample_rate, columns)

    return [e["path"] for items in entries.values() for e in items], build


# ------------------------------------------------------------ command lines
def cli_parser(module, description, data_folder_help, save_folder_help="where the CSVs go"):
    """The argument parser of ``python -m data_prep.<module>``, with
    ``--data_folder`` and ``--save_folder``; the module adds its own options,
    then :func:`run_cli` adds ``--skip_bad_files`` and ``--num_workers``."""
    parser = argparse.ArgumentParser(prog=f"python -m data_prep.{module}",
                                     description=description)
    parser.add_argument("--data_folder", required=True, help=data_folder_help)
    parser.add_argument("--save_folder", required=True, help=save_folder_help)
    return parser


def print_csv_files(result):
    """Print ``<output>: <csv file>`` for every output of a PrepResult."""
    for name, path in result.csv_files.items():
        print(f"{name}: {path}")


def run_cli(parser, argv, prepare, skip_help="leave out bad files instead of stopping",
            report=print_csv_files):
    """Run a preparation from the command line; returns the exit code.

    Adds ``--skip_bad_files`` (help ``skip_help``) and ``--num_workers`` to
    ``parser``, parses ``argv``, sets up logging and calls ``prepare`` with
    every option as the keyword argument of the same name
    (``prepare(data_folder=..., save_folder=..., skip_bad_files=..., ...)``).
    A :class:`DataPreparationError` is printed to stderr and gives exit code
    2; otherwise ``report(result)`` prints the outputs and the exit code is
    0."""
    parser.add_argument("--skip_bad_files", action="store_true", help=skip_help)
    parser.add_argument("--num_workers", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = prepare(**vars(args))
    except DataPreparationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report(result)
    return 0
