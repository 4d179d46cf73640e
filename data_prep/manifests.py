"""CSV files in and out: corpus metadata tables read, SpeechBrain manifests
written.

:func:`write_csv` writes a SpeechBrain CSV (``ID,duration,wav,...``)
atomically (temporary file + ``os.replace``), and :func:`relative_to_root`
turns absolute paths into ``$data_root/...`` so a manifest loads anywhere
with ``DynamicItemDataset.from_csv(csv, replacements={"data_root": folder})``;
:func:`format_seconds` writes its ``duration``. :func:`read_table` reads a
corpus's CSV/TSV metadata, its faults added to a
:class:`~data_prep.problems.ProblemList`.
"""
import csv
import os
import secrets
from pathlib import Path

from speechbrain_ext.io.data import DATA_ROOT_KEY, SAMPLE_RATE


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
    # Not speechbrain.dataio.dataio.merge_csvs: its output is the same for
    # files write_csv wrote, but it writes ``output`` in place (an interrupted
    # merge leaves half a manifest), joins raw lines (a file without a final
    # newline fuses two rows), compares headers as raw text (CRLF vs LF
    # differ), names the csv module instead of the file whose header differs,
    # and fails on an empty list with an IndexError.
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


def read_table(path, problems, required, delimiter=",", what="metadata file",
               quoting=csv.QUOTE_MINIMAL):
    """Rows of a CSV/TSV metadata file as ``[(line number, dict)]``.

    A missing or unreadable file, or one whose header lacks a column of
    ``required``, is a fatal problem (a whole split or label set would be
    missing) and ``[]`` is returned. ``quoting=csv.QUOTE_NONE`` reads files
    whose fields are never quoted (Common Voice TSVs).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "meta.tsv")
    >>> from data_prep.problems import ProblemList
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

