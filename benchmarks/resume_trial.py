#!/usr/bin/env python3
"""Kill-and-resume trial of the pre-training recipe: does a run killed at
random points (``kill -9``) and resumed end with the same weights as one that
was never interrupted?

    python benchmarks/resume_trial.py --trials 10 [--yaml nc_1s.yaml] [--updates 30]

Runs the recipe once uninterrupted (the reference), then ``--trials`` times:
start, kill at a random moment after the first interval checkpoint, resume
(once or ``--kills`` times), and compare every tensor of the final
checkpoint (model incl. EMA target, optimizer, counters) with the reference.
Prints one line per trial and the count of bit-exact ends. Micro model on the
synthetic corpus (``make data``); about 20 s per run on 2 cores.
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "pretrain" / "train.py"
MICRO_MODEL = ("--backbone_config={conv_layers: [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], "
               "[32, 3, 2], [32, 2, 2], [32, 2, 2]], dim: 32, num_layers: 2, num_heads: 2, "
               "ffn_dim: 64, pos_conv_kernel: 16, pos_conv_groups: 4, layerdrop: 0.0}")


def recipe_command(yaml, out, data, updates, extra=()):
    """The micro recipe command line (``extra``: more overrides)."""
    return [sys.executable, str(RECIPE), f"hparams/{yaml}", "--overrides_file", "overrides/micro.yaml",
            MICRO_MODEL, f"--output_folder={out}", f"--max_updates={updates}", "--device=cpu",
            "--log_interval=1", f"--data_folder={data}", "--ckpt_interval_minutes=0",
            "--ckpt_interval_steps=2", *extra]


def environment():
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "PYTHONUNBUFFERED": "1"}


def logged_updates(out):
    log = Path(out) / "train_log.txt"
    return [int(u) for u in re.findall(r"train update: (\d+)", log.read_text())] if log.exists() else []


def run_to_end(cmd):
    proc = subprocess.run(cmd, cwd=REPO, env=environment(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def run_and_kill(cmd, out, kill_after_update, timeout=600):
    """Start ``cmd``; SIGKILL it once the log shows ``kill_after_update`` and
    an interval checkpoint exists (the kill lands at a random moment of the
    following update). Returns the last logged update."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            updates = logged_updates(out)
            if updates and updates[-1] >= kill_after_update and list((Path(out) / "save").glob("CKPT+*")):
                time.sleep(random.uniform(0, 0.5))
                break
            time.sleep(0.05)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    return logged_updates(out)[-1] if logged_updates(out) else 0, finished


def final_state(out):
    """Every tensor of the newest complete checkpoint, by file and key."""
    from speechbrain_ext.io.checkpoints import latest_checkpoint

    ckpt = latest_checkpoint(Path(out) / "save")
    state = {}
    for name in ("model.ckpt", "optimizer.ckpt"):
        loaded = torch.load(ckpt / name, map_location="cpu", weights_only=True)
        flat = loaded.get("state", loaded) if name == "optimizer.ckpt" else loaded
        for key, value in _tensors(flat):
            state[f"{name}:{key}"] = value
    return state, ckpt


def _tensors(tree, prefix=""):
    if torch.is_tensor(tree):
        yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))


def compare(reference, state):
    """(bit-exact?, max |difference|, relative L2 of the difference)."""
    if reference.keys() != state.keys():
        return False, float("inf"), float("inf")
    worst, num, den = 0.0, 0.0, 0.0
    exact = True
    for key, ref in reference.items():
        other = state[key]
        if ref.dtype.is_floating_point:
            diff = (ref.double() - other.double())
            worst = max(worst, diff.abs().max().item() if diff.numel() else 0.0)
            num += diff.pow(2).sum().item()
            den += ref.double().pow(2).sum().item()
        exact &= torch.equal(ref, other)
    return exact, worst, (num / den) ** 0.5 if den else 0.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kills", type=int, default=1, help="kills per trial")
    parser.add_argument("--yaml", default="nc_1s.yaml")
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--batch_seconds", type=float, default=None,
                        help="override (large batches make short epochs: resumes across epoch ends)")
    parser.add_argument("--data_folder", default=str(REPO / "data" / "mini" / "LibriSpeech"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--work_dir", default=None)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="resume_trial_"))
    start = time.time()
    reference_out = work / "reference"
    extra = [f"--batch_seconds={args.batch_seconds}"] if args.batch_seconds else []
    run_to_end(recipe_command(args.yaml, reference_out, args.data_folder, args.updates, extra))
    reference, _ = final_state(reference_out)
    print(f"[resume] reference: {args.updates} updates of {args.yaml} uninterrupted "
          f"({time.time() - start:.0f} s); {len(reference)} tensors compared", flush=True)
    exact_count = 0
    for trial in range(args.trials):
        out = work / f"trial{trial}"
        cmd = recipe_command(args.yaml, out, args.data_folder, args.updates, extra)
        kills = []
        for _ in range(args.kills):
            done = logged_updates(out)[-1] if logged_updates(out) else 0
            target = random.randint(done + 2, max(done + 2, args.updates - 2))
            killed_at, finished = run_and_kill(cmd, out, target)
            kills.append(killed_at)
        text = run_to_end(cmd)
        resumed = re.search(r"resumed from checkpoint at update (\d+)", text)
        state, ckpt = final_state(out)
        exact, worst, rel = compare(reference, state)
        exact_count += exact
        print(f"[resume] trial {trial}: killed after update(s) {kills}, resumed at update "
              f"{resumed.group(1) if resumed else '-'}, ended at {logged_updates(out)[-1]}: "
              f"{'bit-exact' if exact else f'differs: max |diff| {worst:.3g}, relative L2 {rel:.3g}'}",
              flush=True)
    print(f"[resume] {exact_count} of {args.trials} resumed runs end bit-exact with the uninterrupted "
          f"run ({time.time() - start:.0f} s; work folder {work})")
    return exact_count == args.trials


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
