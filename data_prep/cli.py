"""The command line every ``python -m data_prep.<module>`` shares.

:func:`cli_parser` + :func:`run_cli` give every module the same options
(``--data_folder``, ``--save_folder``, ``--skip_bad_files``,
``--num_workers``, and ``--full_decode`` / ``--header_only`` where the module
takes ``full_decode``) and the same exit codes (0; 2 with the problem list
on stderr).
"""
import argparse
import logging
import sys

from speechbrain_ext.io.data import DataPreparationError

from .audio_scan import DEFAULT_FULL_DECODE


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
    :func:`~data_prep.audio_scan.scan_audio`). Sets ``full_decode`` to
    True / False / "float"."""
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
