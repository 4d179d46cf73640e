"""The generic preparation driver.

:func:`run_preparation` drives a preparation for a corpus module, which
supplies only how to read its metadata: skip-if-done
(:class:`~data_prep.done_record.DoneRecord`), audio scan
(:func:`~data_prep.audio_scan.scan_audio`), the bad-input policy
(:class:`~data_prep.problems.ProblemList`) and atomic writing
(:func:`~data_prep.manifests.write_csv`). :func:`collected_entries` turns
the usual ``{output: [row without duration]}`` into what it needs. Every
``prepare_*`` returns a :class:`PrepResult`.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

from speechbrain_ext.io.data import SAMPLE_RATE

from .audio_scan import DEFAULT_FULL_DECODE, full_decode_mode, scan_audio
from .done_record import DoneRecord
from .manifests import format_seconds, write_csv
from .problems import ProblemList

logger = logging.getLogger(__name__)


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


