#!/usr/bin/env python3
"""Probe a pre-trained checkpoint against random networks of the same shape.

    python recipes/pretrain/probe.py results/runs/pretrain_micro/save --data_folder data/mini

Tasks (frozen features, linear heads; ``speechbrain_ext.analysis.probe``):

* ``characters``: a linear CTC head over the frames, trained on LibriSpeech
  train-clean-100 and scored by its CTC loss per character on dev-clean
  (other speakers); lower is better;
* ``speaker``: speaker identification on train-clean-100 (utterances of each
  speaker split 3:1, cropped to 3 s), mean-pooled features, accuracy;
* ``keyword`` (optional): 35-word classification on Speech Commands v0.02
  (the corpus's own speaker-disjoint test list), accuracy.

Prints one line per task, saying whether the checkpoint is better than,
within or worse than the random networks' range.
"""
import argparse
import sys
from pathlib import Path

import soundfile as sf
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from data_prep.librispeech import collect_tree  # noqa: E402
from data_prep.problems import ProblemList  # noqa: E402
from speechbrain_ext import load_backbone  # noqa: E402
from speechbrain_ext.analysis.probe import compare_ctc_with_random, compare_with_random  # noqa: E402
from speechbrain_ext.downstream.vocabulary import LetterVocabulary  # noqa: E402


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


def speaker_task(folder, seconds=3.0, max_speakers=None, max_per_speaker=None):
    """``{"train"|"test": [(waveform cropped to seconds, speaker)]}`` of
    train-clean-100, every 4th utterance of a speaker held out; the first
    ``max_speakers`` speakers and ``max_per_speaker`` utterances of each
    (None: all)."""
    folder = Path(folder) / "train-clean-100"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no LibriSpeech train-clean-100 folder")
    task = {"train": [], "test": []}
    for speaker in sorted(p for p in folder.iterdir() if p.is_dir())[:max_speakers]:
        files = sorted(speaker.rglob("*.flac"))[:max_per_speaker]
        for i, f in enumerate(files):
            task["test" if i % 4 == 3 else "train"].append((read(f, seconds), speaker.name))
    return task


def transcript_task(folder, vocabulary, train_split="train-clean-100", test_split="dev-clean"):
    """``{"train"|"test": [(waveform, character indices)]}`` of whole
    LibriSpeech utterances, read and checked by the data preparation's
    ``collect_tree`` (a transcript line without audio is an error)."""
    task = {}
    for name, split in (("train", train_split), ("test", test_split)):
        root = Path(folder) / split
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no LibriSpeech {split} folder")
        problems = ProblemList(f"probe transcripts ({split})")
        utterances = collect_tree(root, problems)
        problems.enforce()
        if not utterances:
            raise FileNotFoundError(f"{root}: no LibriSpeech *.trans.txt transcripts")
        task[name] = [(read(u.path), torch.tensor(vocabulary.encode(u.text, u.uid))) for u in utterances]
    return task


def verdict(pretrained, random_scores, higher_is_better):
    """Where the checkpoint's score lies against the random networks' range."""
    if higher_is_better:
        pretrained, random_scores = -pretrained, [-r for r in random_scores]
    return ("better than" if pretrained < min(random_scores) else
            "worse than" if pretrained > max(random_scores) else "within")


def report(name, r, higher_is_better, details):
    """One ``[probe]`` line: the checkpoint, the random networks and the verdict."""
    random_scores = r["random"]
    print(f"[probe] {name}: pre-trained {r['pretrained']:.3f} vs random init "
          f"{sum(random_scores) / len(random_scores):.3f} (mean of {len(random_scores)} seeds: "
          + " ".join(f"{a:.3f}" for a in random_scores)
          + f"; pre-trained is {verdict(r['pretrained'], random_scores, higher_is_better)} "
          f"their range; {details})", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="anything speechbrain_ext.load_backbone reads")
    parser.add_argument("--data_folder", default="data/mini")
    parser.add_argument("--keywords_per_word", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random_seeds", type=int, default=3,
                        help="random networks to compare with (seeds seed, seed+1, ...)")
    parser.add_argument("--tasks", nargs="+", choices=["characters", "speaker", "keyword"],
                        default=["characters", "speaker"],
                        help="keyword stays near chance for micro models on the synthetic data")
    parser.add_argument("--ctc_epochs", type=int, default=15,
                        help="training epochs of the characters task's CTC head (every network alike)")
    args = parser.parse_args(argv)
    if args.random_seeds < 1:
        parser.error(f"--random_seeds must be at least 1, got {args.random_seeds}")
    torch.manual_seed(args.seed)
    backbone = load_backbone(args.checkpoint)
    data = Path(args.data_folder)
    tasks = {}
    if "speaker" in args.tasks:
        tasks["speaker id"] = speaker_task(data / "LibriSpeech")
    if "keyword" in args.tasks:
        tasks["keyword (35 words)"] = keyword_task(data / "speech_commands_v0.02", args.keywords_per_word)
    if "characters" in args.tasks:
        vocabulary = LetterVocabulary()
        task = transcript_task(data / "LibriSpeech", vocabulary)
        r = compare_ctc_with_random(backbone, task, len(vocabulary), args.seed, args.random_seeds,
                                    epochs=args.ctc_epochs)
        report("characters (linear CTC head, dev-clean CTC loss per character, lower is better)", r,
               False, f"{len(task['train'])} train / {len(task['test'])} test utterances")
    for name, task in tasks.items():
        r = compare_with_random(backbone, task, args.seed, args.random_seeds)
        report(f"{name} (accuracy, higher is better)", r, True,
               f"chance {r['chance']:.3f}; {len(task['train'])} train / {len(task['test'])} test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
