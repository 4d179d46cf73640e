"""How fast the LibriSpeech preparation scans a corpus -- headers only vs a
full decode of every sample -- with 1 and 2 (or ``--workers``) scanning
processes side by side, in seconds per hour of audio.

    python benchmarks/prep_speed.py                      # data/ls5h, ~5 h
    python benchmarks/prep_speed.py --data data/mini --hours 0   # reuse mini

The corpus is generated with the synthetic generator when missing
(``--hours`` h of train-clean-100, written to ``--data``). Each timing is
the best of ``--repeats`` runs after one warm-up run (page cache warm: a cold
first read of the real corpus from disk is slower and bound by the disk).
Four tables:

1. ``prepare_librispeech`` end to end (walk, transcripts, scan, CSV) into a
   fresh folder, with ``full_decode=False`` (headers only), the default
   ``"float"`` (decode only files that can hold NaN / Inf: none in a FLAC
   corpus) and ``True`` (decode every file), and the full / header ratio.
2. The scan alone (``scan_audio``): headers on the file list repeated to
   ``--scan_files`` (steady state, no pool start-up), full decode on the
   list once.
3. Float files: ``--float_hours`` of the corpus rewritten as float32 WAV in a
   temporary folder, scanned headers-only and with the default (which
   decodes them all, as they can hold NaN).
4. The checks before / while training: ``verify_manifest`` of the 5 s length
   split and ``read_piece`` per 5 s piece.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_prep.audio_scan import scan_audio  # noqa: E402
from data_prep.length_splits import csv_name, prepare_length_splits, verify_manifest
from data_prep.librispeech import prepare_librispeech  # noqa: E402
from speechbrain_ext.io.data import read_csv, read_piece

FULL_LIBRISPEECH_FILES = 281241  # train-clean-100 + train-clean-360 + train-other-500
FULL_LIBRISPEECH_HOURS = 960
MODES = (("header", False), ("default", "float"), ("full", True))


def ensure_corpus(root, hours):
    from data_prep.synthetic import generate

    generate(root, seed=0, size="mini", corpora=["librispeech"],
             hours_librispeech=hours or None, log=print)
    return root / "LibriSpeech"


def best_of(repeats, run, warmup=True):
    """Best wall time of ``run()`` over ``repeats`` calls (after a warm-up)."""
    best = None
    for k in range(repeats + int(warmup)):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        if k or not warmup:
            best = elapsed if best is None else min(best, elapsed)
    return best


def time_prepare(data_folder, split, workers, repeats, full_decode):
    def run():
        with tempfile.TemporaryDirectory() as save:
            prepare_librispeech(data_folder, save, [split], num_workers=workers,
                                progress=False, full_decode=full_decode)

    return best_of(repeats, run)


def time_scan(paths, workers, repeats, full_decode):
    """Best time of a scan of ``paths`` (warm cache)."""
    def run():
        result = scan_audio(paths, num_workers=workers, progress=False,
                            full_decode=full_decode)
        assert not result.problems, result.problems[:3]

    return best_of(repeats, run, warmup=False)


def plain_read(segments, data_folder):
    """The segments of a piece read with no check (what ``read_piece`` did)."""
    import numpy as np
    import soundfile as sf

    from speechbrain_ext.io.data import parse_segments, resolve_data_root

    return np.concatenate([sf.read(path, start=start, stop=stop, dtype="float32")[0]
                           for path, start, stop in parse_segments(
                               resolve_data_root(segments, data_folder))])


def float_copy(paths, hours, folder):
    """The first files of ``paths`` making ``hours`` of audio, rewritten as
    float32 WAV in ``folder``; returns the new paths and their hours."""
    import soundfile as sf

    out, seconds = [], 0.0
    for k, path in enumerate(paths):
        data, rate = sf.read(path, dtype="float32")
        target = Path(folder) / f"{k:06d}.wav"
        sf.write(target, data, rate, subtype="FLOAT")
        out.append(str(target))
        seconds += len(data) / rate
        if seconds >= hours * 3600:
            break
    return out, seconds / 3600


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO / "data" / "ls5h"),
                        help="corpus root (holding LibriSpeech/)")
    parser.add_argument("--hours", type=float, default=5.0,
                        help="train-clean-100 hours to generate if missing (0: preset size)")
    parser.add_argument("--split", default="train-clean-100")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan_files", type=int, default=30000,
                        help="files in the header-only scan measurement")
    parser.add_argument("--float_hours", type=float, default=0.5,
                        help="hours rewritten as float WAV for table 3 (0: skip)")
    args = parser.parse_args(argv)
    data_folder = ensure_corpus(Path(args.data), args.hours)
    with tempfile.TemporaryDirectory() as save:
        prepare_librispeech(data_folder, save, [args.split], progress=False)
        rows = read_csv(Path(save) / f"{args.split}.csv")
    files, hours = len(rows), sum(float(r["duration"]) for r in rows) / 3600
    print(f"\ncorpus: {data_folder / args.split}, {files} files, {hours:.2f} h "
          f"({hours * 3600 / files:.1f} s per file)")

    print(f"\n1. prepare_librispeech, seconds per hour of audio (best of {args.repeats}, "
          "warm cache); 960 h estimate at this rate")
    print(f"{'workers':>7} " + " ".join(f"{name:>9}" for name, _ in MODES)
          + f" {'full/header':>11} {'960 h header':>12} {'960 h full':>11}")
    for workers in args.workers:
        per_hour = {name: time_prepare(data_folder, args.split, workers, args.repeats,
                                       mode) / hours for name, mode in MODES}
        print(f"{workers:>7} " + " ".join(f"{per_hour[name]:>9.4f}" for name, _ in MODES)
              + f" {per_hour['full'] / per_hour['header']:>10.1f}x"
              + f" {per_hour['header'] * FULL_LIBRISPEECH_HOURS:>10.0f} s"
              + f" {per_hour['full'] * FULL_LIBRISPEECH_HOURS:>9.0f} s")

    # A small corpus is dominated by fixed costs (starting the pool); the
    # header scan over a longer list shows the steady-state rate.
    paths = sorted(str(p) for p in (data_folder / args.split).rglob("*.flac"))
    repeated = paths * max(1, -(-args.scan_files // len(paths)))
    hours_repeated = hours * len(repeated) / len(paths)
    print(f"\n2. scan_audio alone, seconds per hour of audio: headers of {len(repeated)} "
          f"files (the list repeated), full decode of the {len(paths)} files once")
    print(f"{'workers':>7} {'header':>9} {'full':>9} {'full/header':>11} "
          f"{'header files/s':>14} {'281k files header':>18} {'960 h full':>11}")
    for workers in args.workers:
        header = time_scan(repeated, workers, args.repeats, False) / hours_repeated
        full = time_scan(paths, workers, args.repeats, True) / hours
        files_per_s = len(repeated) / (header * hours_repeated)
        print(f"{workers:>7} {header:>9.4f} {full:>9.4f} {full / header:>10.1f}x "
              f"{files_per_s:>14.0f} {FULL_LIBRISPEECH_FILES / files_per_s:>16.0f} s "
              f"{full * FULL_LIBRISPEECH_HOURS:>9.0f} s")

    if args.float_hours > 0:
        with tempfile.TemporaryDirectory() as folder:
            floats, float_hours = float_copy(paths, args.float_hours, folder)
            print(f"\n3. float32 WAV copy ({len(floats)} files, {float_hours:.2f} h), "
                  "scan_audio, seconds per hour of audio")
            print(f"{'workers':>7} {'header':>9} {'default':>9} {'default/header':>14}")
            for workers in args.workers:
                header = time_scan(floats, workers, args.repeats, False) / float_hours
                default = time_scan(floats, workers, args.repeats, "float") / float_hours
                print(f"{workers:>7} {header:>9.4f} {default:>9.4f} {default / header:>13.1f}x")

    with tempfile.TemporaryDirectory() as save:
        prepare_length_splits(data_folder, save, [5], splits=[args.split])
        split_csv = Path(save) / csv_name(5)
        pieces = read_csv(split_csv)
        piece_hours = sum(float(p["duration"]) for p in pieces) / 3600
        print(f"\n4. checks before / while training on {split_csv.name} "
              f"({len(pieces)} pieces, {piece_hours:.2f} h)")
        for workers in args.workers:
            elapsed = best_of(args.repeats, lambda: verify_manifest(
                split_csv, data_folder, num_workers=workers, progress=False))
            print(f"verify_manifest, {workers} worker(s): {elapsed:.3f} s "
                  f"({elapsed / piece_hours:.4f} s per hour of audio)")
        sample = pieces[:: max(1, len(pieces) // 300)]
        elapsed = best_of(args.repeats, lambda: [read_piece(p["segments"], data_folder)
                                                 for p in sample])
        plain = best_of(args.repeats, lambda: [plain_read(p["segments"], data_folder)
                                               for p in sample])
        print(f"read_piece: {1e3 * elapsed / len(sample):.3f} ms per 5 s piece, checks "
              f"included ({len(sample)} pieces); a bare soundfile.read of the same "
              f"segments: {1e3 * plain / len(sample):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
