#!/usr/bin/env python3
"""Probe a pre-trained checkpoint against a random network of the same shape.

    python recipes/pretrain/probe.py results/runs/pretrain_micro/save --data_folder data/mini

Tasks (frozen features, linear probe): speaker identification on
LibriSpeech train-clean-100 (utterances of each speaker split 3:1, cropped
to 3 s), and optionally keyword classification on Speech Commands v0.02 (35
words, the corpus's own speaker-disjoint test list). Prints one line per task.
"""
import argparse
import sys
from pathlib import Path

import soundfile as sf
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from speechbrain_ext import load_backbone  # noqa: E402
from speechbrain_ext.analysis.probe import compare_with_random  # noqa: E402


def read(path, max_seconds=None):
    wav, rate = sf.read(path, dtype="float32")
    if rate != 16000:
        raise ValueError(f"{path}: sample rate {rate}, expected 16000")
    if max_seconds:
        wav = wav[: int(max_seconds * rate)]
    return torch.from_numpy(wav)


def keyword_task(folder, per_word):
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no Speech Commands folder (python -m data_prep.synthetic)")
    held_out = set((folder / "testing_list.txt").read_text().split())
    task = {"train": [], "test": []}
    for word_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_")):
        files = sorted(word_dir.glob("*.wav"))
        train = [f for f in files if f"{word_dir.name}/{f.name}" not in held_out][:per_word]
        test = [f for f in files if f"{word_dir.name}/{f.name}" in held_out]
        task["train"] += [(read(f), word_dir.name) for f in train]
        task["test"] += [(read(f), word_dir.name) for f in test]
    return task


def speaker_task(folder, seconds=3.0):
    folder = Path(folder) / "train-clean-100"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no LibriSpeech train-clean-100 folder")
    task = {"train": [], "test": []}
    for speaker in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(speaker.rglob("*.flac"))
        for i, f in enumerate(files):
            task["test" if i % 4 == 3 else "train"].append((read(f, seconds), speaker.name))
    return task


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="anything speechbrain_ext.load_backbone reads")
    parser.add_argument("--data_folder", default="data/mini")
    parser.add_argument("--keywords_per_word", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random_seeds", type=int, default=3,
                        help="random networks to compare with (seeds seed, seed+1, ...)")
    parser.add_argument("--tasks", nargs="+", choices=["speaker", "keyword"], default=["speaker"],
                        help="keyword stays near chance for micro models on the synthetic data")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    backbone = load_backbone(args.checkpoint)
    data = Path(args.data_folder)
    tasks = {}
    if "speaker" in args.tasks:
        tasks["speaker id"] = speaker_task(data / "LibriSpeech")
    if "keyword" in args.tasks:
        tasks["keyword (35 words)"] = keyword_task(data / "speech_commands_v0.02", args.keywords_per_word)
    for name, task in tasks.items():
        r = compare_with_random(backbone, task, args.seed, args.random_seeds)
        random_accs = r["random"]
        verdict = ("above" if r["pretrained"] > max(random_accs) else
                   "below" if r["pretrained"] < min(random_accs) else "within")
        print(f"[probe] {name}: pre-trained {r['pretrained']:.3f} vs random init "
              f"{sum(random_accs) / len(random_accs):.3f} (mean of {len(random_accs)} seeds: "
              + " ".join(f"{a:.3f}" for a in random_accs)
              + f"; pre-trained is {verdict} their range; chance {r['chance']:.3f}; "
              f"{len(task['train'])} train / {len(task['test'])} test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
