#!/usr/bin/env python3
"""Inference time of the zoo models, side by side (paper 002, Tables 1 / 2 /
4: average inference time per utterance and the ratio to wav2vec2-base),
plus FLOPs per second of audio.

    python results/inference_time.py                          # paper sizes, 3 utterances
    python results/inference_time.py --utterances 3 --repeats 2 --models w2v2_base sewd_mid
    python results/inference_time.py --table6                # paper 002 Table 6's rows
    python results/inference_time.py --device cuda            # where a GPU is available
    python results/inference_time.py --quick                  # the micro models, seconds

The defaults time every paper-size zoo model (95 M parameters for
wav2vec2-base, 300 M+ for the large ones): about 8 min on 2 quiet CPU cores;
``--quick`` times the three micro models on one utterance (a smoke run, not a
paper number). Progress goes to standard error, the table to standard
output. CPU threads: ``--threads``, else ``OMP_NUM_THREADS`` (torch reads it),
else torch's default.

Utterances: the first ``--utterances`` files (sorted by path) of LibriSpeech
dev-clean under ``--data_folder`` (default ``data/mini/LibriSpeech``, the
synthetic corpus); without that folder, fixed random audio of LibriSpeech-like
lengths (4 to 16 s, seed 0). Every model sees the same utterances, one at a
time (batch 1, as paper 002 times inference), in fp32, in inference mode.

``--models`` takes any name of the zoo (``python -m speechbrain_ext.models``
lists them; a wrong one is an error naming the nearest); ``--table6`` times
the backbones of Table 6's rows instead (rows 6 and 7 share one, ``sew_tiny``:
they differ in the pre-training heads only).

Models are randomly initialised (speed does not depend on the weights) and
all live in one process. Each repeat runs every utterance through every
model, models interleaved and their order rotated each repeat, after one
untimed warm-up pass each; a model's time per utterance is the median over
repeats, averaged over utterances. Ratios are paired: per repeat, the model's
total time over the reference's (``--reference``, default w2v2_base) in the
same repeat, median over repeats, so a slow phase of a shared machine hits
both sides of a ratio alike.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix
products, convolutions, attention; not element-wise ops, norms or gathers)
over the same utterances, divided by their total duration.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechbrain_ext.analysis.inference_time import (SAMPLE_RATE, count_flops, load_utterances,  # noqa: E402
                                                     time_utterances, warm_up)
from speechbrain_ext.models.registry import build_backbone  # noqa: E402
from speechbrain_ext.models.registry import count_parameters  # noqa: E402
from speechbrain_ext.models.zoo import TABLE6, ZOO, zoo_config  # noqa: E402

PAPER_MODELS = [n for n in ZOO if not n.endswith("_micro")]
REFERENCE = "w2v2_base"


def progress(message):
    """A progress line on standard error (the table stays alone on stdout)."""
    print(f"[inference_time] {message}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:3]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=PAPER_MODELS, metavar="ZOO_NAME",
                        help="zoo names (default: every paper-size model)")
    parser.add_argument("--table6", action="store_true",
                        help="time the backbones of paper 002's Table 6 rows instead of --models")
    parser.add_argument("--reference", default=REFERENCE, metavar="ZOO_NAME",
                        help=f"the model ratios are taken to (default {REFERENCE})")
    parser.add_argument("--utterances", type=int, default=3,
                        help="dev-clean utterances timed, one at a time (batch 1)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed passes over the utterances (the median is reported)")
    parser.add_argument("--data_folder", default=str(REPO / "data" / "mini" / "LibriSpeech"),
                        help="a LibriSpeech folder with dev-clean/ (without it: random audio)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: OMP_NUM_THREADS, else torch's)")
    parser.add_argument("--quick", action="store_true",
                        help="the micro models (reference w2v2_micro), 1 utterance, 1 repeat")
    args = parser.parse_args(argv)
    if args.table6:
        args.models = list(dict.fromkeys(TABLE6.values()))
    if args.quick:
        args.models = [n for n in ZOO if n.endswith("_micro")]
        args.reference = args.reference if args.reference != REFERENCE else "w2v2_micro"
        args.utterances, args.repeats = 1, 1
    elif args.models == PAPER_MODELS:
        progress(f"timing the {len(PAPER_MODELS)} paper-size zoo models (the default; about 8 min "
                 "on 2 CPU cores): --quick times the micro ones in seconds")
    for name in [args.reference] + args.models:
        try:
            zoo_config(name)
        except ValueError as err:
            parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    reference = args.reference
    models = list(dict.fromkeys([reference] + args.models))  # the reference always runs
    width = max(16, *(len(name) for name in models))
    waves, source = load_utterances(args.data_folder, args.utterances)
    audio_seconds = sum(len(w) for w in waves) / SAMPLE_RATE
    print(f"# {source}, {audio_seconds:.1f} s of audio; device {device} "
          f"({torch.get_num_threads()} threads); {args.repeats} repeats; torch {torch.__version__}")

    torch.manual_seed(0)
    started = time.perf_counter()
    progress(f"building {len(models)} models and counting their FLOPs")
    nets = {name: build_backbone(zoo_config(name)).to(device).eval() for name in models}
    flops = {name: count_flops(net, waves[:1], device) / (len(waves[0]) / SAMPLE_RATE)
             for name, net in nets.items()}
    for net in nets.values():
        warm_up(net, waves, device)
    times = {name: [[] for _ in waves] for name in models}  # [utterance][repeat]
    totals = {name: [] for name in models}  # per repeat
    for repeat in range(args.repeats):
        elapsed = time.perf_counter() - started
        eta = f", about {elapsed / repeat * (args.repeats - repeat):.0f} s left" if repeat else ""
        progress(f"repeat {repeat + 1}/{args.repeats} ({elapsed:.0f} s so far{eta})")
        order = models[repeat % len(models):] + models[:repeat % len(models)]
        for name in order:
            per_utterance = time_utterances(nets[name], waves, device)
            for i, seconds in enumerate(per_utterance):
                times[name][i].append(seconds)
            totals[name].append(sum(per_utterance))

    print(f"{'model':<{width}} {'params(M)':>9} {'s/utt':>8} {'ratio':>6} {'speed-up':>8} "
          f"{'GFLOPs/s audio':>15}")
    for name in models:
        per_utt = statistics.mean(statistics.median(t) for t in times[name])
        ratio = statistics.median(a / b for a, b in zip(totals[name], totals[reference]))
        print(f"{name:<{width}} {count_parameters(zoo_config(name)) / 1e6:9.1f} {per_utt:8.3f} "
              f"{ratio:6.2f} {1 / ratio:7.2f}x {flops[name] / 1e9:15.1f}")
    print(f"# ratio: time / {reference}'s time (paired per repeat, median); "
          "speed-up = 1 / ratio; FLOPs counted on the first utterance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
