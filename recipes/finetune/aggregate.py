#!/usr/bin/env python3
"""Mean and standard deviation over seeds of fine-tuning runs (paper 002,
Tables 3 and 5: three random runs), from the ``wer.json`` that
``recipes/finetune/train.py`` writes in each output folder.

    python recipes/finetune/aggregate.py results/finetune/ls100/1 results/finetune/ls100/2 \\
        results/finetune/ls100/3
    python recipes/finetune/aggregate.py results/finetune/ls100/* --metric CER --json agg.json

Runs are grouped when they differ only by seed: same ``setting``,
``pretrained`` checkpoint and configuration (the digest of the saved
``hyperparams.yaml`` without the seed, output and data folders:
``speechbrain_ext.downstream.results.run_config_digest``); a cell is
``mean ± std (n=3)`` with the sample standard deviation (ddof=1), or the
plain value of a single run. A folder given twice counts once; two runs of
one seed count once (the one given last).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from speechbrain_ext.downstream.results import (FINETUNE_OUTCOME_FIELDS,  # noqa: E402
                                                aggregate_over_seeds, finetune_run_records,
                                                format_finetune_table)


def aggregate(folders, metric="WER"):
    """Aggregated groups (``results.aggregate_over_seeds``) of the runs in
    ``folders`` (output folders or ``wer.json`` paths) for ``metric``, and
    the Markdown table."""
    seen, records = set(), []
    for folder in folders:
        key = Path(folder).resolve()
        key = key.parent if key.is_file() else key
        if key in seen:
            continue
        seen.add(key)
        records += finetune_run_records(folder)
    groups = aggregate_over_seeds([r for r in records if r["metric"] == metric],
                                  FINETUNE_OUTCOME_FIELDS)
    return groups, format_finetune_table(records, metric=metric)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="output folders holding wer.json (or the files)")
    parser.add_argument("--metric", default="WER", choices=("WER", "CER"))
    parser.add_argument("--json", default=None, help="also write the aggregated groups here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    groups, table = aggregate(args.folders, args.metric)
    print(table)
    print(f"\n{args.metric} in %; mean ± sample standard deviation (ddof=1) over n seeds")
    if args.json:
        Path(args.json).write_text(json.dumps(groups, indent=1))
    return groups


if __name__ == "__main__":
    main()
