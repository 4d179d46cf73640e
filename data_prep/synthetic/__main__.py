"""Command line: ``python -m data_prep.synthetic --out data/mini --seed 0``."""
import argparse
import json
import sys
import time

from . import CORPORA, ON_REQUEST, SIZE_PRESETS, CorpusFolderError, generate
from .espeak import UnknownVoiceError


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.synthetic",
        description="Synthesise small corpora in the real datasets' layouts.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=SIZE_PRESETS, default="mini")
    parser.add_argument("--hours-librispeech", type=float, default=None,
                        help="scale train-clean-100 to about this many hours")
    parser.add_argument("--only", nargs="+", choices=list(CORPORA), default=None,
                        help="generate only these corpora (default: all but "
                             f"{' '.join(ON_REQUEST)}, built only when named here)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: all cores)")
    args = parser.parse_args(argv)
    if args.hours_librispeech is not None and args.hours_librispeech <= 0:
        parser.error("--hours-librispeech must be positive")
    start = time.time()
    try:
        results = generate(args.out, seed=args.seed, size=args.size,
                           corpora=args.only, hours_librispeech=args.hours_librispeech,
                           jobs=args.jobs)
    except (CorpusFolderError, UnknownVoiceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total_hours = sum(r.get("hours", 0) for r in results.values())
    summary = {k: {f: r.get(f) for f in ("hours", "recordings", "speakers", "build_seconds")}
               for k, r in results.items()}
    print(json.dumps(summary, indent=1))
    print(f"[synthetic] {total_hours:.2f} h in {len(results)} corpora under {args.out} "
          f"({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
