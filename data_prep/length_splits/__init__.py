"""Fixed-length pre-training sets (paper 003, "Match to win", Fig. 1 top).

From a prepared LibriSpeech manifest (the pre-training set), build for each
target length ``L`` (``--lengths 1 5 10 15``; any other value is just another
parameter) a dataset whose pieces all last between ``L`` and
``L + max_spread`` seconds (``max_spread`` = 1 s), by truncating long
utterances and concatenating consecutive utterances of the same speaker and
chapter. No audio is rewritten: a piece is a list of ``(file, start, stop)``
segments, stored in the CSV column ``segments`` as
``$data_root/a.flac:START:STOP;$data_root/b.flac:START:STOP`` (START/STOP in
samples, STOP exclusive), and ``speechbrain_ext.io.data.read_piece`` returns
its waveform. How a chapter is cut: :mod:`data_prep.length_splits.cutting`.

Outputs in ``save_folder``: ``length_<L>s.csv`` (``ID,duration,segments,
spk_id``; load with ``DynamicItemDataset.from_csv(csv, replacements=
{"data_root": data_folder})`` and ``add_dynamic_item(read_piece,
takes="segments", provides="sig")``, or
:func:`~data_prep.length_splits.reading.piece_dataset`),
``length_splits_stats.json`` (count, hours, min/mean/max seconds per length)
and ``length_splits.png`` (max/mean/min length per split, as Fig. 1 top);
see :mod:`data_prep.length_splits.stats`. Before training,
:func:`verify_manifest` checks that the audio of a split is still as it was
prepared.

Command line::

    python -m data_prep.length_splits --data_folder data/mini/LibriSpeech \\
        --save_folder results/prep --lengths 1 5 10 15 [--splits 960]
"""
import hashlib
import json
import logging
import os
from pathlib import Path

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError, read_csv

from ..audio_scan import DEFAULT_FULL_DECODE
from ..cli import cli_parser, run_cli
from ..done_record import DoneRecord
from ..manifests import atomic_write_text, write_csv
from .cutting import CSV_COLUMNS, length_tag, make_pieces
from .reading import verify_manifest
from .stats import plot_stats, splits_stats

__all__ = ["csv_name", "main", "prepare_length_splits", "verify_manifest"]

logger = logging.getLogger(__name__)

PREP_VERSION = 1
DEFAULT_LENGTHS = (1, 5, 10, 15)
STATS_FILE = "length_splits_stats.json"
FIGURE_FILE = "length_splits.png"


def csv_name(length):
    """File name of the CSV for one length.

    >>> csv_name(10)
    'length_10s.csv'
    """
    return f"length_{length_tag(length)}.csv"


def _fingerprint(paths):
    digest = hashlib.sha1()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def prepare_length_splits(data_folder, save_folder, lengths=DEFAULT_LENGTHS,
                          splits=("train-clean-100",), source_csvs=None, max_spread=1.0,
                          sample_rate=SAMPLE_RATE, skip_prep=False, skip_bad_files=False,
                          num_workers=None, full_decode=DEFAULT_FULL_DECODE):
    """Write ``length_<L>s.csv`` for every ``L`` in ``lengths``, plus the
    statistics JSON and figure (see the module docstring).

    Arguments
    ---------
    data_folder : str
        The LibriSpeech folder (holding ``train-clean-100/`` ...).
    save_folder : str
        Where everything is written.
    lengths : sequence of float
        Target lengths in seconds; pieces last ``L`` to ``L + max_spread``.
    splits : sequence of str
        LibriSpeech splits forming the source set (``"960"`` for the paper's
        960 h); prepared with ``prepare_librispeech`` into ``save_folder``
        unless ``source_csvs`` is given.
    source_csvs : list of str, optional
        Already prepared manifests to use as the source instead.
    max_spread : float
        Largest difference between two pieces of one split, in seconds.
    skip_prep : bool
        Do nothing (SpeechBrain convention).
    skip_bad_files, num_workers, full_decode :
        Passed to ``prepare_librispeech`` (``full_decode``: which files are
        decoded to find NaN / Inf samples and damaged data; it is in that
        preparation's done record, so a full-decode run after a header-only
        one scans again). Unused with ``source_csvs``: check those with
        :func:`verify_manifest`.

    Returns
    -------
    dict with ``csv_files`` (``{"5s": path}``), ``stats`` (as written to
    ``length_splits_stats.json``) and ``prepared`` (lengths built now), or
    None with ``skip_prep``.
    """
    if skip_prep:
        logger.info("length splits skipped (skip_prep=True)")
        return None
    lengths = sorted({float(L) for L in lengths})
    if not lengths or min(lengths) <= 0:
        raise ValueError(f"lengths must be positive seconds, got {lengths}")
    save_folder = Path(save_folder)
    if source_csvs is None:
        from ..librispeech import prepare_librispeech

        result = prepare_librispeech(data_folder, save_folder, splits,
                                     skip_bad_files=skip_bad_files,
                                     num_workers=num_workers, sample_rate=sample_rate,
                                     full_decode=full_decode)
        source_csvs = [result.csv_files[s] for s in result.csv_files]
    source_csvs = [os.path.abspath(p) for p in source_csvs]
    missing = [p for p in source_csvs if not os.path.isfile(p)]
    if missing:
        raise DataPreparationError(f"source manifest(s) not found: {missing}")
    rows = [row for path in source_csvs for row in read_csv(path)]
    options = {"source_csvs": source_csvs, "source_sha1": _fingerprint(source_csvs),
               "max_spread": float(max_spread), "sample_rate": sample_rate,
               "version": PREP_VERSION}
    record = DoneRecord(save_folder, "length_splits")
    csv_files = {length_tag(L): str(save_folder / csv_name(L)) for L in lengths}
    prepared, pieces_of = [], {}
    for length in lengths:
        tag = length_tag(length)
        if record.is_done(tag, options, [csv_files[tag]]):
            continue
        pieces, info = make_pieces(rows, length, max_spread, sample_rate)
        if not pieces:
            raise DataPreparationError(
                f"no {tag} piece could be made from {source_csvs}: every chapter "
                f"is shorter than {length:g} s")
        record.forget([tag])
        write_csv(csv_files[tag], pieces, CSV_COLUMNS)
        record.mark_done(tag, options)
        pieces_of[tag] = pieces
        prepared.append(tag)
        logger.info("length split %s: %d pieces, %.2f h, %.1f s dropped -> %s", tag,
                    len(pieces), sum(float(p["duration"]) for p in pieces) / 3600,
                    info["dropped_seconds"], csv_files[tag])
    split_pieces = {}
    for length in lengths:
        tag = length_tag(length)
        split_pieces[tag] = (length, pieces_of.get(tag) or read_csv(csv_files[tag]))
    stats = splits_stats(source_csvs, rows, max_spread, split_pieces)
    stats_path = save_folder / STATS_FILE
    figure_path = save_folder / FIGURE_FILE
    atomic_write_text(stats_path, json.dumps(stats, indent=1) + "\n")
    plot_stats(stats["splits"], figure_path)
    return {"csv_files": csv_files, "stats": stats, "prepared": prepared,
            "stats_file": str(stats_path), "figure": str(figure_path)}


def main(argv=None):
    parser = cli_parser("length_splits",
                        "Cut LibriSpeech into pre-training sets of fixed-length pieces "
                        "(paper 003).",
                        "the LibriSpeech folder (holding train-clean-100/ ...)",
                        save_folder_help=None)
    parser.add_argument("--lengths", nargs="+", type=float, default=list(DEFAULT_LENGTHS),
                        help="piece lengths in seconds (default: 1 5 10 15)")
    parser.add_argument("--splits", nargs="+", default=["train-clean-100"],
                        help="source LibriSpeech splits ('960' for the paper's 960 h)")
    parser.add_argument("--source_csv", nargs="+", default=None, dest="source_csvs",
                        metavar="SOURCE_CSV",
                        help="use these prepared manifests as the source instead")
    parser.add_argument("--max_spread", type=float, default=1.0,
                        help="longest minus shortest piece of a split, seconds")

    def report(result):
        print(json.dumps(result["stats"]["splits"], indent=1))
        print(f"statistics: {result['stats_file']}\nfigure: {result['figure']}")

    return run_cli(parser, argv, prepare_length_splits, skip_help=None, report=report,
                   decode_options=True)

