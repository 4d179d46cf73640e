"""The bad-input policy of every preparation.

Problems found anywhere during a preparation (missing folder, missing split,
unreadable/empty/wrong-rate audio, transcript lines without audio, audio
without transcript ...) are collected in a :class:`ProblemList`.
:meth:`ProblemList.enforce` is called *before anything is written*: by
default it raises :class:`DataPreparationError`, whose message lists every
offending path and what is wrong with it (the list is also written to a file
when it is long); with ``skip_bad_files=True`` the bad files are left out,
their number is logged, and the preparation carries on. Problems marked
``fatal`` (a missing data folder or split) always raise: leaving out a whole
split is never what a recipe wants.
"""
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from speechbrain_ext.io.data import DataPreparationError

logger = logging.getLogger(__name__)

# Problems listed in full in the exception text; beyond this many they are
# also written to a file (terminals and CI logs cut long messages).
PROBLEMS_FILE_THRESHOLD = 20


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


def check_data_folder(data_folder, problems, hint=""):
    """Add a fatal problem if ``data_folder`` is not a folder; returns
    whether it is one."""
    folder = Path(data_folder)
    if folder.is_dir():
        return True
    what = "data folder does not exist" if not folder.exists() else "not a folder"
    problems.add(folder, what + (f" ({hint})" if hint else ""), fatal=True)
    return False
