#!/usr/bin/env python3
"""Run the downstream suite on one checkpoint and print the table in the
layout of paper 003's Table 1 (tasks across, Froz. / Unfroz. under each).

    python recipes/downstream/run_suite.py CKPT --frozen --corpora_root /data
    python recipes/downstream/run_suite.py CKPT --frozen --unfrozen --tasks kws12 er asv
    python recipes/downstream/run_suite.py results/runs/demo_nc_5s/save --frozen --micro
    python recipes/downstream/run_suite.py results/runs/demo_nc_5s/save --frozen --micro \\
        --random_init --label random   # the same shape, randomly initialised

Each task runs as its own process (``recipes/downstream/<task>/train.py``
with ``hparams/<task>.yaml``), appending its record to
``<output_root>/results.jsonl``; ``--micro`` adds ``overrides/micro.yaml``
(and ``overrides/micro_ctc.yaml`` for the CTC tasks; frozen utterance-level
tasks also get ``overrides/micro_suite.yaml``: all the synthetic data, 10
epochs, with the feature cache). Arguments after ``--``
go to every recipe (e.g. ``-- --batch_size 16``). A task whose recipe fails
is reported and the suite goes on; the exit status is 1 if any failed.

``--seeds 1 2 3`` runs every task once per seed (paper 002: three random
runs), each in its own ``<output_root>/seed<N>`` (the manifests of
``<output_root>/prep`` shared through a link, the records appended to
``<output_root>/results.jsonl`` with their seed), and prints each cell as
``mean ± std (n=3)`` over those seeds (sample standard deviation, ddof=1;
``speechbrain_ext.downstream.results.aggregate_over_seeds``). Without it
each task runs once with its YAML's seed.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from speechbrain_ext.downstream.results import (PAPER001_TASKS, TABLE1_TASKS, TASKS,  # noqa: E402
                                                format_table, read_results)

# task key -> (recipe folder, YAML, extra arguments, sequence (CTC) task)
SUITE = {
    "kws12": ("kws", "kws.yaml", ["--num_classes", "12"], False),
    "kws35": ("kws", "kws.yaml", ["--num_classes", "35"], False),
    "sf": ("sf", "sf.yaml", [], True),
    "er": ("er", "er.yaml", [], False),
    "sid": ("sid", "sid.yaml", [], False),
    "asv": ("asv", "asv.yaml", [], False),
    "asr": ("asr", "asr.yaml", [], True),
    "pr": ("pr", "pr.yaml", [], True),
    "ic": ("ic", "ic.yaml", [], False),
    "asr_zh": ("asr_zh", "asr_zh.yaml", [], True),
}
# at micro scale the synthetic corpora hold fewer classes than the real ones
MICRO_TASK_ARGS = {"sid": ["--num_classes", "24"], "asv": ["--num_classes", "18"]}
# frozen micro runs of these tasks use every synthetic utterance and more epochs
# (overrides/micro_suite.yaml) with the feature cache; the CTC tasks keep
# their own micro settings (overrides/micro_ctc.yaml)
MICRO_SUITE_TASKS = ("kws12", "kws35", "er", "sid", "asv", "ic")


def parse(argv):
    argv, passthrough = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) \
        if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backbone", help="checkpoint: pre-training save/CKPT folder, backbone.ckpt, "
                                         "HF folder or fairseq .pt, of any architecture (its own "
                                         "is used)")
    parser.add_argument("--frozen", action="store_true", help="run frozen (weighted sum)")
    parser.add_argument("--unfrozen", action="store_true", help="run fine-tuned (CNN frozen)")
    parser.add_argument("--tasks", nargs="+", default=list(TABLE1_TASKS),
                        choices=list(SUITE), help="default: paper 003 Table 1's tasks")
    parser.add_argument("--paper001", action="store_true",
                        help="also run paper 001's tasks (PR, IC, ASR-zh)")
    parser.add_argument("--micro", action="store_true", help="micro scale (overrides/micro.yaml)")
    parser.add_argument("--corpora_root", help="folder holding the corpora")
    parser.add_argument("--output_root", default=None, help="default: the YAMLs' (or micro's)")
    parser.add_argument("--label", default=None, help="row name in the table")
    parser.add_argument("--random_init", action="store_true",
                        help="a randomly initialised network of the checkpoint's shape")
    parser.add_argument("--feature_cache", default=None,
                        help="frozen utterance-level tasks: cache the backbone's per-layer "
                             "features here (default with --micro: <output_root>/feature_cache; "
                             "at paper scale about 1 MB per second of audio for a base model, "
                             "so off unless given)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="run every task once per seed (own output folder each) and report "
                             "mean ± sample std over them")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    if args.seeds is not None and len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds: repeated seed in {args.seeds}")
    if args.seeds is not None and any(a == "--seed" or a.startswith("--seed=") for a in passthrough):
        parser.error("give the seeds with --seeds, not --seed after --")
    if not (args.frozen or args.unfrozen):
        parser.error("give --frozen and/or --unfrozen")
    if args.paper001:
        args.tasks += [t for t in PAPER001_TASKS if t not in args.tasks]
    return args, passthrough


def seed_output_root(output_root, seed):
    """``<output_root>/seed<N>``, its ``prep`` a link to ``<output_root>/prep``
    (the manifests do not depend on the seed, so they are prepared once)."""
    root = Path(output_root) / f"seed{seed}"
    root.mkdir(parents=True, exist_ok=True)
    (Path(output_root) / "prep").mkdir(parents=True, exist_ok=True)
    if not (root / "prep").exists() and not (root / "prep").is_symlink():
        os.symlink(os.path.join("..", "prep"), root / "prep", target_is_directory=True)
    return root


def command(args, task, freeze, passthrough, seed=None):
    """The command line of one task; with ``seed``, run in
    ``<output_root>/seed<N>`` (:func:`seed_output_root`) with that seed,
    appending to ``<output_root>/results.jsonl``."""
    folder, yaml_name, extra, sequence = SUITE[task]
    cmd = [args.python, str(HERE / folder / "train.py"), str(HERE / folder / "hparams" / yaml_name),
           "--backbone", str(args.backbone), "--freeze", str(freeze), *extra]
    if args.micro:
        cmd += ["--overrides_file", str(HERE / "overrides" / "micro.yaml")]
        if sequence:
            cmd += ["--overrides_file", str(HERE / "overrides" / "micro_ctc.yaml")]
        if freeze and task in MICRO_SUITE_TASKS:
            cmd += ["--overrides_file", str(HERE / "overrides" / "micro_suite.yaml")]
        cmd += MICRO_TASK_ARGS.get(task, [])
    cache = args.feature_cache if args.feature_cache is not None else \
        (str(Path(args.output_root) / "feature_cache") if args.micro else None)
    if freeze and cache and not sequence:
        cmd += ["--feature_cache", cache]
    for key in ("corpora_root", "output_root", "label"):
        if getattr(args, key) is not None and not (seed is not None and key == "output_root"):
            cmd += [f"--{key}", str(getattr(args, key))]
    if seed is not None:
        cmd += ["--seed", str(seed), "--output_root", str(seed_output_root(args.output_root, seed)),
                "--results_file", str(Path(args.output_root) / "results.jsonl")]
    if args.random_init:
        cmd += ["--random_init", "True"]
    if args.label is None:
        cmd += ["--label", ("random:" if args.random_init else "") + str(args.backbone)]
    return cmd + passthrough


def main(argv=None):
    args, passthrough = parse(sys.argv[1:] if argv is None else argv)
    output_root = Path(args.output_root or ("results/runs/downstream_micro" if args.micro
                                            else "results/downstream"))
    args.output_root = str(output_root)
    label = args.label or ("random:" if args.random_init else "") + str(args.backbone)
    modes = [m for m, on in ((True, args.frozen), (False, args.unfrozen)) if on]
    failed, timings, start = [], {}, time.time()
    seeds = args.seeds or [None]
    for task, seed in ((t, s) for t in args.tasks for s in seeds):
        folder, yaml_name, _, _ = SUITE[task]
        for freeze in modes:
            name = f"{task} ({'frozen' if freeze else 'unfrozen'}" + \
                (f", seed {seed})" if seed is not None else ")")
            if not (HERE / folder / "train.py").is_file() or \
                    not (HERE / folder / "hparams" / yaml_name).is_file():
                print(f"== {name}: no recipe {folder}/train.py + hparams/{yaml_name}; skipped",
                      flush=True)
                failed.append(name)
                continue
            cmd = command(args, task, freeze, passthrough, seed)
            print(f"== {name}: {' '.join(cmd)}", flush=True)
            task_start = time.time()
            code = subprocess.call(cmd)
            timings[name] = time.time() - task_start
            if code:
                print(f"== {name}: FAILED (exit status {code})", flush=True)
                failed.append(name)
    total = time.time() - start
    results = output_root / "results.jsonl"
    records = [r for r in read_results(results) if r.get("label") == label] \
        if results.is_file() else []
    if args.seeds:
        records = [r for r in records if r.get("seed") in args.seeds]
    print(f"\nSuite on {label} ({', '.join('frozen' if m else 'unfrozen' for m in modes)}), "
          f"{total:.0f} s" + (f", seeds {' '.join(map(str, args.seeds))} "
                             "(mean ± sample std, ddof=1)" if args.seeds else "") + ":")
    print(format_table(records, tasks=[t for t in TASKS if t in args.tasks],
                       aggregate_seeds=bool(args.seeds)))
    print("\nper task: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    if failed:
        print(f"failed or missing: {', '.join(failed)}")
        if not args.micro:  # the usual cause on a fresh clone: a micro checkpoint, paper settings
            print("(a micro checkpoint, or the embedded corpora in data/mini? add --micro)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
