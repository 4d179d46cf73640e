"""Checking and measuring audio files.

:func:`scan_audio` reads the header of every audio file (``soundfile``), in
``num_workers`` parallel processes with a progress bar, and checks that each
file exists, is readable, is not empty, has the expected sample rate and is
mono. ``full_decode`` says which files are also decoded sample by sample
(undecodable data, fewer frames than the header says, NaN / Inf samples):
``"float"`` (the default) only those whose sample format can hold NaN / Inf
(``soundfile`` subtype ``FLOAT`` / ``DOUBLE``; integer PCM and FLAC cannot,
so they cost a header read), ``True`` every file, ``False`` none. It returns
the number of frames of every good file and a list of
:class:`~data_prep.problems.Problem`. :func:`verify_audio_files` is the
cheap re-check a recipe runs before training (headers + the last samples a
manifest needs).
"""
import functools
import logging
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .problems import PROBLEMS_FILE_THRESHOLD, Problem

logger = logging.getLogger(__name__)

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



def _inspect_item(item, sample_rate, full_decode, exact, tail):
    """:func:`_inspect` of one ``(path, need)``: ``(path, frames, what, decoded)``."""
    path, need = item
    return (path, *_inspect(path, sample_rate, full_decode, need, exact, tail))


@dataclass
class ScanResult:
    """Output of :func:`scan_audio`: ``frames`` maps every good path to its
    number of frames; ``problems`` lists the bad ones; ``decoded`` counts
    the files whose samples were all decoded."""

    frames: dict
    problems: list
    decoded: int = 0


def default_workers():
    """Worker processes to use when ``num_workers`` is None: every core.

    Not ``speechbrain.utils.parallel.get_available_cpu_count``: that one
    also obeys ``SB_NUM_PROC``, and importing it imports torch (~2 s), which
    a scan of a few hundred files in this process does not need."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parallel_inspect(items, sample_rate, full_decode, num_workers, progress, desc,
                      exact=True, tail=False):
    """:func:`_inspect` over ``items`` (``[(path, need)]``, unique paths) in
    a worker pool with a progress bar; a :class:`ScanResult` in the order of
    ``items``.

    With more than one worker the files go through SpeechBrain's
    ``parallel_map`` (a process pool fed ``chunk_size`` files per task,
    results in the order of ``items``, a worker's exception raised here);
    with one, they are inspected in this process."""
    from tqdm import tqdm

    if num_workers is None:  # every core, but a pool only pays off on many files
        per_worker = (MIN_DECODED_FILES_PER_WORKER if full_decode is True
                      else MIN_FILES_PER_WORKER)
        workers = min(default_workers(), len(items) // per_worker)
    else:
        workers = int(num_workers)
    workers = max(1, min(workers, len(items)))
    inspect = functools.partial(_inspect_item, sample_rate=sample_rate,
                                full_decode=full_decode, exact=exact, tail=tail)
    if workers > 1:
        # imported here: it imports torch, which a one-process scan does not need
        from speechbrain.utils.parallel import parallel_map

        # small enough tasks to keep every worker busy until the end
        size = max(1, min(_CHUNK, -(-len(items) // (8 * workers))))
        # our bar, not parallel_map's: the same one (desc, unit, hidden when
        # stderr is no terminal, closed on errors too) for one or many workers
        results = parallel_map(inspect, items, process_count=workers, chunk_size=size,
                               progress_bar=False)
    else:
        results = map(inspect, items)
    frames, problems, decoded = {}, [], 0
    bar = tqdm(total=len(items), desc=desc, unit="file",
               disable=(not progress) or None, leave=False)
    try:
        for path, n_frames, what, was_decoded in results:
            decoded += was_decoded
            if what is None:
                frames[path] = n_frames
            else:
                problems.append(Problem(path, what))
            bar.update()
    finally:
        bar.close()
        if hasattr(results, "close"):  # stop the pool now, not when collected
            results.close()
    return ScanResult(frames, problems, decoded)


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
    >>> list(result.frames.values())
    [800]
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


