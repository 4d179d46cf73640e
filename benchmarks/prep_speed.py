"""How fast the LibriSpeech preparation scans a corpus, in hours of audio per
minute, with 1 and 2 (or ``--workers``) scanning processes side by side.

    python benchmarks/prep_speed.py                      # data/ls5h, ~5 h
    python benchmarks/prep_speed.py --data data/mini --hours 0   # reuse mini

The corpus is generated with the synthetic generator when missing
(``--hours`` h of train-clean-100, written to ``--data``). Each timing is a
full ``prepare_librispeech`` (walk, transcripts, header scan, CSV) into a
fresh folder, so nothing is skipped; the best of ``--repeats`` runs is
reported after one warm-up run (page cache warm: a cold first read of the
real corpus from disk is slower and bound by the disk).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_prep.common import read_csv, scan_audio  # noqa: E402
from data_prep.librispeech import prepare_librispeech  # noqa: E402

FULL_LIBRISPEECH_FILES = 281241  # train-clean-100 + train-clean-360 + train-other-500


def ensure_corpus(root, hours):
    from data_prep.synthetic import generate

    generate(root, seed=0, size="mini", corpora=["librispeech"],
             hours_librispeech=hours or None, log=print)
    return root / "LibriSpeech"


def time_prepare(data_folder, split, workers, repeats):
    best = None
    for _ in range(repeats + 1):  # the first run only warms up
        with tempfile.TemporaryDirectory() as save:
            start = time.perf_counter()
            result = prepare_librispeech(data_folder, save, [split], num_workers=workers,
                                         progress=False)
            elapsed = time.perf_counter() - start
            rows = read_csv(result.csv_files[split])
        best = elapsed if best is None else min(best, elapsed)
    seconds = sum(float(r["duration"]) for r in rows)
    return best, len(rows), seconds / 3600


def time_scan(paths, workers, repeats):
    """Best time of a header scan of ``paths`` (warm cache)."""
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = scan_audio(paths, num_workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        assert not result.problems
        best = elapsed if best is None else min(best, elapsed)
    return best


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
                        help="files in the scan-only measurement")
    args = parser.parse_args(argv)
    data_folder = ensure_corpus(Path(args.data), args.hours)
    print(f"\nprepare_librispeech on {data_folder / args.split} (best of {args.repeats}, "
          "warm cache)")
    print(f"{'workers':>7} {'files':>7} {'hours':>7} {'seconds':>8} {'files/s':>9} "
          f"{'h audio/min':>12} {'960 h (281k files) est.':>24}")
    for workers in args.workers:
        elapsed, files, hours = time_prepare(data_folder, args.split, workers, args.repeats)
        rate = files / elapsed
        print(f"{workers:>7} {files:>7} {hours:>7.2f} {elapsed:>8.3f} {rate:>9.0f} "
              f"{hours / (elapsed / 60):>12.0f} {FULL_LIBRISPEECH_FILES / rate:>22.0f} s")
    # A small corpus is dominated by fixed costs (starting the pool); the
    # header scan alone over a longer list shows the steady-state rate.
    paths = sorted(str(p) for p in (data_folder / args.split).rglob("*.flac"))
    paths = paths * max(1, -(-args.scan_files // len(paths)))
    seconds_per_file = hours * 3600 / files
    print(f"\nheader scan only, {len(paths)} files (the list repeated, warm cache)")
    print(f"{'workers':>7} {'seconds':>8} {'files/s':>9} {'h audio/min':>12} "
          f"{'281k files est.':>16}")
    for workers in args.workers:
        elapsed = time_scan(paths, workers, args.repeats)
        rate = len(paths) / elapsed
        print(f"{workers:>7} {elapsed:>8.3f} {rate:>9.0f} "
              f"{rate * seconds_per_file / 60:>12.0f} {FULL_LIBRISPEECH_FILES / rate:>14.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
