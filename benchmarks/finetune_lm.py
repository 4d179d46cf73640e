#!/usr/bin/env python3
"""Micro-scale CTC fine-tuning of a pre-trained checkpoint (by default the
`make demo` one) and of a random initialisation of the same shape, side by
side: CTC loss (per utterance, the batch of the first and of the last logged
update), greedy WER / CER, WER / CER of the beam search without an LM and with
the n-gram LM (weight and word insertion tuned on dev-clean, applied to
test-clean), and the out-of-vocabulary rate of each split against the lexicon
(the training transcripts' words).

    python benchmarks/finetune_lm.py [CHECKPOINT] [--setting ls100] [--data data/mini] \\
        [--seeds 1 2 3] [-- --max_updates=300 ...]

Each run is ``recipes/finetune/train.py hparams/<setting>.yaml --overrides_file
overrides/micro.yaml`` (arguments after ``--`` are passed on); results go to
``<out>/{pretrained,random}/wer.json`` (``--out``, default results/runs/finetune_lm).
``--seeds 1 2 3``: each initialisation fine-tuned once per seed, in
``<out>/<init>/seed<N>``, then the WERs as mean ± sample standard deviation
(ddof=1) over the seeds (paper 002, Table 3: three random runs).

Each run takes about 6.5 min on 2 idle CPU cores (2000 updates of the micro
model, the micro LM grid); ``--quick`` runs 20 updates and one LM weight /
word score (a smoke run, not a comparison). The recipe's threads follow
``OMP_NUM_THREADS`` (the environment is passed on); a line before each run
says which it is and how many are left.
"""
import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from speechbrain_ext.downstream.results import (finetune_run_records,  # noqa: E402
                                                format_finetune_table)


def epoch_losses(train_log):
    """``(train, dev)`` CTC losses per utterance of every epoch line
    (``epoch: N, ... - train loss: X - valid loss: Y``), in order: the train
    loss averaged over the epoch's batches."""
    return [(float(t), float(v)) for t, v in re.findall(
        r"^epoch: \d+.* - train loss: ([0-9.e+-]+) - valid loss: ([0-9.e+-]+)",
        Path(train_log).read_text(), flags=re.M)]


def oov_rates(prep_folder, train_csv_name, splits):
    """Percent of running words of each split missing from the training words."""
    def words(name):
        with open(Path(prep_folder) / f"{name}.csv") as handle:
            return [w for row in csv.DictReader(handle) for w in row["wrd"].split()]
    lexicon = set(words(train_csv_name))
    return {s: 100.0 * sum(w not in lexicon for w in words(s)) / max(1, len(words(s))) for s in splits}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default="results/runs/demo_nc_5s/save",
                        help="pre-trained backbone (our checkpoint folder, HF folder, fairseq .pt)")
    parser.add_argument("--setting", default="ls100", help="recipes/finetune/hparams/<setting>.yaml")
    parser.add_argument("--data", default="data/mini", help="folder holding LibriSpeech/ (and librispeech_finetuning/)")
    parser.add_argument("--out", default="results/runs/finetune_lm",
                        help="output folder, relative to the repository")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="20 updates, one LM weight and word score: a smoke run")
    parser.add_argument("--reuse", action="store_true", help="keep a row whose wer.json exists")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="fine-tune each initialisation once per seed; report mean ± std")
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after "--" goes to the recipe (argparse cannot give a
    # second positional list after an optional positional)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.extra = argv[split + 1:]
    if not (Path(args.checkpoint).exists() or (REPO / args.checkpoint).exists()):
        parser.error(f"no checkpoint {args.checkpoint}: `make demo` writes the default one; or give "
                     "a pre-training save folder (results/runs/pretrain_micro/save)")
    if args.quick:  # before the user's extra arguments, which win
        args.extra = ["--max_updates=20", "--lm_weights=[1.0]", "--word_scores=[0.0]", *args.extra]
    rows, folders = {}, []
    runs = [(init, pretrained, seed) for init, pretrained in
            (("pretrained", args.checkpoint), ("random", "null")) for seed in (args.seeds or [None])]
    for init, pretrained, seed in runs:
        label = init if seed is None else f"{init} s{seed}"
        out = (REPO / args.out / init / ("" if seed is None else f"seed{seed}")).resolve()
        folders.append(out)
        start = time.time()
        print(f"[finetune_lm] run {len(folders)}/{len(runs)}: {label} ({pretrained}) -> {out}"
              + ("" if args.quick else " (about 6.5 min on 2 idle cores)"), flush=True)
        if not (args.reuse and (out / "wer.json").is_file()):
            subprocess.run([sys.executable, str(REPO / "recipes/finetune/train.py"),
                            f"hparams/{args.setting}.yaml", "--overrides_file", "overrides/micro.yaml",
                            f"--pretrained={pretrained}", f"--data_folder={args.data}/LibriSpeech",
                            f"--librilight_folder={args.data}/librispeech_finetuning",
                            f"--output_folder={out}", f"--device={args.device}",
                            *([] if seed is None else [f"--seed={seed}"]), *args.extra],
                           check=True, cwd=REPO)
        losses = epoch_losses(out / "train_log.txt")
        results = json.loads((out / "wer.json").read_text())
        train_csv = next(p.stem for p in (out / "prep").glob("*.csv")
                         if p.stem not in results and p.stem not in ("dev-other", "test-other"))
        minutes = (time.time() - start) / 60 if (out / "wer.json").stat().st_mtime > start else float("nan")
        rows[label] = {"minutes": minutes, "train_loss": (losses[0][0], losses[-1][0]),
                       "dev_loss": (losses[0][1], losses[-1][1]),
                       "oov": oov_rates(out / "prep", train_csv, [s for s in results if "-" in s]),
                       **results}
    last = rows[label]
    splits = [s for s, v in last.items() if isinstance(v, dict) and "greedy" in v]
    print(f"\nmicro CTC fine-tuning ({args.setting}), pre-trained = {args.checkpoint}; CTC loss per "
          "utterance first -> last epoch; WER / CER in % of the best dev checkpoint (update)")
    header = f"{'init':13} {'minutes':>7} {'train loss':>13} {'dev loss':>13} {'update':>6}"
    for split in splits:
        header += f" | {split + ' greedy':>18} {split + ' beam':>15} {split + ' LM':>15}"
    tuned_on = (last["tuned"] or {}).get("split")
    print(header + f" | LM weight, word score (tuned on {tuned_on})")
    nan = {"WER": float("nan"), "CER": float("nan")}
    for label, r in rows.items():
        line = (f"{label:13} {r['minutes']:7.1f} {r['train_loss'][0]:6.0f}->{r['train_loss'][1]:5.0f} "
                f"{r['dev_loss'][0]:6.0f}->{r['dev_loss'][1]:5.0f} {r['updates']:6d}")
        for split in splits:
            greedy, beam, lm = (r[split].get(k, nan) for k in ("greedy", "beam_no_lm", "lm"))
            line += (f" | {greedy['WER']:8.1f} / {greedy['CER']:6.1f}  {beam['WER']:6.1f} / "
                     f"{beam['CER']:5.1f}  {lm['WER']:6.1f} / {lm['CER']:5.1f}")
        tuned = r["tuned"] or {}
        print(line + f" | {tuned.get('lm_weight')}, {tuned.get('word_score')}")
    print("OOV rate of the lexicon (training words): "
          + ", ".join(f"{s} {v:.1f} %" for s, v in last["oov"].items()))
    if args.seeds:
        records = [r for folder in folders for r in finetune_run_records(folder)]
        print(f"\nWER over seeds {' '.join(map(str, args.seeds))}: mean ± sample std (ddof=1)")
        print(format_finetune_table(records, metric="WER", digits=1))
    return rows


if __name__ == "__main__":
    main()
