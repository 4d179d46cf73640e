"""Shared machinery for every corpus preparation in ``data_prep``.

A preparation script (``prepare_X(data_folder, save_folder, ..., skip_prep)``)
is built from four pieces, all defined here:

* **Audio scanning** -- :func:`scan_audio` reads the header of every audio
  file (``soundfile``), in ``num_workers`` parallel processes with a progress
  bar, and checks that each file exists, is readable, is not empty, has the
  expected sample rate and is mono. ``full_decode`` says which files are also
  decoded sample by sample (undecodable data, fewer frames than the header
  says, NaN / Inf samples): ``"float"`` (the default) only those whose sample
  format can hold NaN / Inf (``soundfile`` subtype ``FLOAT`` / ``DOUBLE``;
  integer PCM and FLAC cannot, so they cost a header read), ``True`` every
  file, ``False`` none. It returns the number of frames of every good file and
  a list of :class:`Problem`. :func:`verify_audio_files` is the cheap re-check
  a recipe runs before training (headers + the last samples a manifest
  needs).
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
``--num_workers``, and ``--full_decode`` / ``--header_only`` where the module
takes ``full_decode``; exit code 2 with the problem list on stderr).
"""
import argparse
import csv
import json
import logging
import multiprocessing
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_ext.io.data import (DATA_ROOT_KEY, SAMPLE_RATE, AudioFileError,  # noqa: F401
                                     DataPreparationError, read_csv, resolve_data_root)

logger = logging.getLogger(__name__)

# Problems listed in full in the exception text; beyond this many they are
# also written to a file (terminals and CI logs cut long messages).
PROBLEMS_FILE_THRESHOLD = 20
_CHUNK = 256  # files per task sent to a scanning worker
MIN_FILES_PER_WORKER = 1000  # num_workers=None starts no more workers than this allows
# decoding every sample costs ~30x a header read (benchmarks/prep_speed.py),
# so a pool pays off on far fewer files
MIN_DECODED_FILES_PER_WORKER = 50
# Sample formats (soundfile subtypes) that can store NaN / Inf: IEEE floats.
# Integer PCM, FLAC, ALAW/ULAW ... decode to finite values whatever the bytes.
NONFINITE_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
DEFAULT_FULL_DECODE = "float"
_DECODE_BLOCK = 1 << 16  # frames per read of a full decode (256 KiB as float32)
_TAIL_FRAMES = 1024  # frames :func:`verify_audio_files` reads at the end


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
def full_decode_mode(full_decode):
    """Normalise a ``full_decode`` option: ``False`` (headers only),
    ``"float"`` (decode the files that can hold NaN / Inf) or ``True``
    (decode every file). ``None`` / ``0`` / ``1`` read as ``False`` / ``True``.

    >>> full_decode_mode("float"), full_decode_mode(None), full_decode_mode(1)
    ('float', False, True)
    """
    if isinstance(full_decode, str):
        if full_decode == "float":
            return "float"
        raise ValueError(f"full_decode must be True, False or 'float', got {full_decode!r}")
    return bool(full_decode)


def can_hold_nonfinite(subtype):
    """Whether samples of this ``soundfile`` subtype can be NaN / Inf.

    >>> can_hold_nonfinite("FLOAT"), can_hold_nonfinite("PCM_16")
    (True, False)
    """
    return subtype in NONFINITE_SUBTYPES


def _error_detail(err):
    return str(err).split(":")[-1].strip() or type(err).__name__


def _decode_all(audio, frames, check_finite):
    """Read every frame of an open mono ``SoundFile``.

    Returns what is wrong, or None. Integer files are read as int16 (no
    float conversion: only decodability and length matter); float files as
    float32, what training reads, and checked for NaN / Inf block by block
    (one ``[_DECODE_BLOCK]`` buffer, reused)."""
    buffer = np.empty(_DECODE_BLOCK, dtype="float32" if check_finite else "int16")
    done, nan, inf, first = 0, 0, 0, None
    try:
        while True:
            block = audio.read(out=buffer)  # a shorter view at the end of the file
            if check_finite and not np.isfinite(block).all():  # rare: count them all
                is_nan = np.isnan(block)
                is_inf = np.isinf(block)
                nan += int(is_nan.sum())
                inf += int(is_inf.sum())
                if first is None:
                    first = done + int(np.flatnonzero(is_nan | is_inf)[0])
            done += len(block)
            if len(block) < len(buffer):
                break
    except Exception as err:  # libsndfile raises several types
        return (f"undecodable audio after {done} of {frames} frames "
                f"({_error_detail(err)}); the file is damaged or truncated")
    if first is not None:
        kinds = " and ".join(f"{n} {k}" for n, k in ((nan, "NaN"), (inf, "Inf")) if n)
        return (f"{kinds} sample(s), the first at sample {first} "
                f"({first / audio.samplerate:.3f} s); expected finite audio")
    if done != frames:
        return (f"only {done} of the {frames} frames its header announces could be "
                "decoded (truncated file?)")
    return None


def _inspect(path, sample_rate, full_decode, need=None, exact=True, tail=False):
    """Check one audio file; returns ``(frames, what is wrong or None, decoded)``.

    ``need`` (frames): what a manifest expects, exactly (``exact``) or at
    least. ``tail``: also read the last ``_TAIL_FRAMES`` frames up to
    ``need`` (or the end): a FLAC header still gives the full length after
    the file was cut short, only reading there shows it."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return None, "file does not exist", False
    except OSError as err:
        return None, f"cannot access file ({err.strerror})", False
    if size == 0:
        return None, "empty file (0 bytes)", False
    try:
        audio = sf.SoundFile(path)
    except Exception as err:  # libsndfile raises several types
        return None, f"unreadable audio ({_error_detail(err)})", False
    with audio:
        frames, rate, channels = audio.frames, audio.samplerate, audio.channels
        if frames <= 0:
            return None, "no audio frames (0 frames)", False
        if sample_rate is not None and rate != sample_rate:
            return None, f"sample rate is {rate} Hz, expected {sample_rate} Hz", False
        if channels != 1:
            return None, f"{channels} channels, expected mono", False
        if need is not None:
            if exact and frames != need:
                return None, (f"{frames} frames, expected {need} as the manifest recorded "
                              "(the file changed after preparation?)"), False
            if frames < need:
                return None, (f"{frames} frames, but the manifest reads up to frame "
                              f"{need} (the file changed after preparation?)"), False
        decode = full_decode is True or (full_decode == "float"
                                         and can_hold_nonfinite(audio.subtype))
        if decode:
            what = _decode_all(audio, frames, can_hold_nonfinite(audio.subtype))
            return (None if what else int(frames)), what, True
        if tail:
            end = frames if need is None else need
            start = max(0, end - _TAIL_FRAMES)
            try:
                audio.seek(start)
                got = len(audio.read(end - start, dtype="int16"))
            except Exception as err:  # libsndfile raises several types
                return None, (f"cannot read frames {start}:{end} ({_error_detail(err)}); "
                              "the file is damaged or truncated"), False
            if got != end - start:
                return None, (f"frames {start}:{end} gave only {got} frames "
                              "(truncated file?)"), False
    return int(frames), None, False


def probe_audio(path, sample_rate=SAMPLE_RATE, full_decode=DEFAULT_FULL_DECODE):
    """Check one audio file.

    Returns ``(frames, None)`` for a good file or ``(None, what_is_wrong)``.
    The header is read (``soundfile.SoundFile``); the samples are decoded
    too as ``full_decode`` says (see :func:`scan_audio`): a decoded file must
    yield as many frames as its header announces, and a float one only
    finite samples.

    >>> import numpy as np, soundfile, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> good = os.path.join(folder, "good.flac")
    >>> soundfile.write(good, np.zeros(1600), 16000)
    >>> probe_audio(good)
    (1600, None)
    >>> probe_audio(os.path.join(folder, "missing.flac"))
    (None, 'file does not exist')
    >>> nan = os.path.join(folder, "nan.wav")
    >>> soundfile.write(nan, np.full(1600, np.nan), 16000, subtype="FLOAT")
    >>> probe_audio(nan)[1]
    '1600 NaN sample(s), the first at sample 0 (0.000 s); expected finite audio'
    >>> probe_audio(nan, full_decode=False)  # header only
    (1600, None)
    """
    frames, what, _ = _inspect(path, sample_rate, full_decode_mode(full_decode))
    return frames, what


def _inspect_chunk(args):
    """Worker task: ``[(path, frames, what, decoded)]`` of a list of
    ``(path, need)``."""
    items, sample_rate, full_decode, exact, tail = args
    return [(path, *_inspect(path, sample_rate, full_decode, need, exact, tail))
            for path, need in items]


@dataclass
class ScanResult:
    """Output of :func:`scan_audio`: ``frames`` maps every good path to its
    number of frames; ``problems`` lists the bad ones; ``decoded`` counts
    the files whose samples were all decoded."""

    frames: dict
    problems: list
    sample_rate: int
    decoded: int = 0

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


def _parallel_inspect(items, sample_rate, full_decode, num_workers, progress, desc,
                      exact=True, tail=False):
    """:func:`_inspect` over ``items`` (``[(path, need)]``, unique paths) in
    a worker pool with a progress bar; a :class:`ScanResult` in the order of
    ``items``."""
    from tqdm import tqdm

    if num_workers is None:  # every core, but a pool only pays off on many files
        per_worker = (MIN_DECODED_FILES_PER_WORKER if full_decode is True
                      else MIN_FILES_PER_WORKER)
        workers = min(default_workers(), len(items) // per_worker)
    else:
        workers = int(num_workers)
    workers = max(1, min(workers, len(items)))
    # small enough tasks to keep every worker busy until the end
    size = max(1, min(_CHUNK, -(-len(items) // (8 * workers))))
    chunks = [(items[i:i + size], sample_rate, full_decode, exact, tail)
              for i in range(0, len(items), size)]
    frames, problems, decoded = {}, [], 0
    bar = tqdm(total=len(items), desc=desc, unit="file",
               disable=(not progress) or None, leave=False)
    pool = None
    try:
        if workers > 1:
            pool = multiprocessing.get_context().Pool(workers)
            results = pool.imap_unordered(_inspect_chunk, chunks)
        else:
            results = map(_inspect_chunk, chunks)
        for chunk in results:
            for path, n_frames, what, was_decoded in chunk:
                decoded += was_decoded
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
    # workers finish in any order: report in the order of ``items``
    order = {path: k for k, (path, _) in enumerate(items)}
    frames = dict(sorted(frames.items(), key=lambda item: order[item[0]]))
    problems.sort(key=lambda p: order[p.path])
    return ScanResult(frames, problems, sample_rate, decoded)


def scan_audio(paths, sample_rate=SAMPLE_RATE, num_workers=None, progress=True,
               desc="scanning audio", full_decode=DEFAULT_FULL_DECODE):
    """Check and measure audio files in parallel.

    Arguments
    ---------
    paths : iterable of str
        Audio files.
    sample_rate : int
        Expected sample rate (files at another rate are problems); None
        accepts any rate.
    num_workers : int, optional
        Worker processes; 0 or 1 scans in this process. None uses every
        core, but one per ``MIN_FILES_PER_WORKER`` files at most
        (``MIN_DECODED_FILES_PER_WORKER`` with ``full_decode=True``): starting
        a pool costs more than scanning a few hundred headers.
    progress : bool
        Show a tqdm progress bar (only when stderr is a terminal).
    full_decode : bool or "float"
        Which files are decoded sample by sample after the header check:
        ``"float"`` (default) those whose subtype is ``FLOAT`` / ``DOUBLE``,
        the only ones that can hold NaN / Inf (integer PCM / FLAC files then
        cost a header read); ``True`` every file (also finds damaged or
        truncated data behind a good header, ~30x the cost of a header scan
        on FLAC); ``False`` none (headers only). A decoded file with NaN /
        Inf samples, undecodable data, or fewer frames than its header
        announces is a problem.

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
    full_decode = full_decode_mode(full_decode)
    items = [(str(p), None) for p in paths]
    return _parallel_inspect(items, sample_rate, full_decode, num_workers, progress, desc)


def verify_audio_files(files, sample_rate=SAMPLE_RATE, exact=True, full_decode=False,
                       num_workers=None, progress=True, max_listed=PROBLEMS_FILE_THRESHOLD,
                       what="audio check"):
    """Re-check prepared audio before training; raise if any file is damaged.

    Cheap by default: every file's header is read again (in parallel, as
    :func:`scan_audio`) -- it must exist, be readable, mono, at
    ``sample_rate`` and have the frames the manifest recorded -- and its
    last ``_TAIL_FRAMES`` frames up to what the manifest needs are decoded
    (a FLAC cut short keeps the full length in its header).

    Arguments
    ---------
    files : dict or iterable
        ``{path: frames}`` as the manifest recorded them, or paths alone
        (then the frame count is not compared).
    sample_rate : int
        Expected rate (None: any).
    exact : bool
        ``frames`` is the exact length of each file (a LibriSpeech
        manifest); False: only the length read from it (a length split's
        pieces may stop before a file's end).
    full_decode : bool or "float"
        Also decode samples, as in :func:`scan_audio` (default False: this
        is the cheap check).
    num_workers, progress
        As in :func:`scan_audio`.
    max_listed : int
        Damaged files named in the message (all are in ``err.problems``).

    Returns
    -------
    ScanResult of the files (all good).

    Raises
    ------
    DataPreparationError
        One error naming the first ``max_listed`` damaged files, what is
        wrong with each, and how many there are.

    Example
    -------
    >>> import numpy as np, soundfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.flac")
    >>> soundfile.write(path, np.zeros(800), 16000)
    >>> len(verify_audio_files({path: 800}, progress=False).frames)
    1
    >>> try:
    ...     verify_audio_files({path: 1600}, progress=False)
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    800 frames, expected 1600 as the manifest recorded (the file changed after preparation?)
    """
    if isinstance(files, dict):
        items = [(str(p), None if n is None else int(n)) for p, n in files.items()]
    else:
        items = [(str(p), None) for p in dict.fromkeys(files)]
    result = _parallel_inspect(items, sample_rate, full_decode_mode(full_decode),
                               num_workers, progress, what, exact=exact, tail=True)
    if result.problems:
        bad = result.problems
        listing = "\n".join(f"  {p}" for p in bad[:max_listed])
        more = f"\n  ... and {len(bad) - max_listed} more" if len(bad) > max_listed else ""
        shown = f", the first {max_listed} listed" if len(bad) > max_listed else ""
        message = (f"{what}: {len(bad)} of {len(items)} audio file(s) are damaged or "
                   f"changed since preparation{shown}; re-copy them, or prepare again "
                   "into a new save folder with skip_bad_files=True to leave them out "
                   "(a re-run into the same folder reuses its manifests):\n"
                   f"{listing}{more}")
        logger.error("%s", message)
        raise DataPreparationError(message, bad)
    return result


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
def _open_temp(path):
    """A new temporary file next to ``path``: ``(text handle, its path)``.

    Created with mode 0o666 so the process umask applies, as with
    ``open()`` (``tempfile.mkstemp`` makes 0o600 files, and ``os.replace``
    would keep that mode on the manifest)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "w", encoding="utf-8", newline=""), tmp
    raise FileExistsError(f"no free temporary name next to {path}")


def _atomic_write(path, write):
    """Call ``write(handle)`` on a temporary file, then move it to ``path``
    (``os.replace``: readers see the old file or the new one, never half)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = _open_temp(path)
    try:
        with handle:
            result = write(handle)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return result


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file + ``os.replace``;
    the file gets the permissions ``open()`` would give (0o666 & ~umask)."""
    _atomic_write(path, lambda handle: handle.write(text))


def write_csv(path, rows, fieldnames):
    """Write a SpeechBrain CSV manifest atomically (never a half-written file).

    ``rows`` are dicts with at least ``ID`` (unique) and every key in
    ``fieldnames``; ``fieldnames`` must start with ``ID``. Returns the number
    of rows. The file gets the permissions ``open()`` would give
    (0o666 & ~umask).

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

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        count = 0
        for row in rows:
            writer.writerow(row)
            count += 1
        return count

    return _atomic_write(path, write)


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
                    what=None, full_decode=DEFAULT_FULL_DECODE):
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
    skip_bad_files, num_workers, sample_rate, progress, full_decode
        As in :func:`scan_audio` / :meth:`ProblemList.enforce`;
        ``full_decode`` is recorded with ``options`` (so a re-run with
        another value scans again).
    what : str, optional
        Name used in messages (default ``"<name> preparation"``).

    Returns
    -------
    PrepResult

    Nothing is written unless every problem is skippable and
    ``skip_bad_files`` is set, or there is none.
    """
    what = what or f"{name} preparation"
    full_decode = full_decode_mode(full_decode)
    options = {**options, "full_decode": full_decode}
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
    scan = scan_audio(paths, sample_rate, num_workers, progress, desc=what,
                      full_decode=full_decode)
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


def add_full_decode_options(parser):
    """``--full_decode`` (decode every file) / ``--header_only`` (decode
    none) on ``parser``; without either, float files are decoded (see
    :func:`scan_audio`). Sets ``full_decode`` to True / False / "float"."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full_decode", dest="full_decode", action="store_const",
                       const=True, default=DEFAULT_FULL_DECODE,
                       help="decode every sample of every audio file (finds damaged "
                            "data and NaN/Inf samples; slower). Default: only files "
                            "stored as float (the only ones that can hold NaN/Inf) "
                            "are decoded, the others' headers are read")
    group.add_argument("--header_only", dest="full_decode", action="store_const",
                       const=False, help="read audio headers only, decode nothing")


def run_cli(parser, argv, prepare, skip_help="leave out bad files instead of stopping",
            report=print_csv_files, decode_options=False):
    """Run a preparation from the command line; returns the exit code.

    Adds ``--skip_bad_files`` (help ``skip_help``) and ``--num_workers`` to
    ``parser`` (and, with ``decode_options``, ``--full_decode`` /
    ``--header_only``: see :func:`add_full_decode_options`), parses ``argv``,
    sets up logging and calls ``prepare`` with every option as the keyword
    argument of the same name (``prepare(data_folder=..., save_folder=...,
    skip_bad_files=..., ...)``). A :class:`DataPreparationError` is printed
    to stderr and gives exit code 2; otherwise ``report(result)`` prints the
    outputs and the exit code is 0."""
    parser.add_argument("--skip_bad_files", action="store_true", help=skip_help)
    parser.add_argument("--num_workers", type=int, default=None)
    if decode_options:
        add_full_decode_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = prepare(**vars(args))
    except DataPreparationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report(result)
    return 0
