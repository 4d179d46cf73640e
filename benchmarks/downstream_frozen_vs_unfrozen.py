#!/usr/bin/env python3
"""Downstream training cost, frozen versus unfrozen backbone (paper 003,
Table 3), side by side in one run:

1. for each task, seconds per training batch (forward + backward + optimizer
   step of the head, and of the backbone but its CNN when unfrozen) and peak
   memory, at the task's paper batch size and its dataset's average
   utterance length (paper 003, Table 3 and Fig. 1);
2. one frozen epoch whose backbone features are read from the feature cache
   versus recomputed by the backbone (the point of the cache: target >= 5x).

    python benchmarks/downstream_frozen_vs_unfrozen.py        # micro, CPU: a few minutes
    python benchmarks/downstream_frozen_vs_unfrozen.py --size base --batches 3   # a GPU
    python benchmarks/downstream_frozen_vs_unfrozen.py --tasks --cache_sizes micro w2v2_base
    python benchmarks/downstream_frozen_vs_unfrozen.py --quick   # KWS and the micro cache: ~1 min

By default part 1 runs every task with a micro backbone, but part 2 also
times a paper-size wav2vec2-base backbone (95 M parameters; its epochs take
minutes on a CPU): ``--cache_sizes micro`` skips it, ``--quick`` (KWS only,
one timed batch, the micro cache epoch on 32 utterances) checks the script
end to end. Progress lines go to standard error, the tables to standard
output. CPU threads: ``--threads``, else ``OMP_NUM_THREADS``, else 1.

``--size micro``: a random backbone of ``recipes/downstream/overrides/micro.yaml``'s
shape with the micro heads (x-vector 64 channels, CTC head 64 units as
``micro_ctc.yaml``); ``--size base``: wav2vec2-base shape (random weights)
with the paper-scale heads of the recipes' YAMLs (x-vector 512, 2 x 1024
BiLSTM CTC). ``--backbone CKPT`` uses a checkpoint instead (paper heads
unless ``--size micro``). Inputs are random waveforms of the average length.

Every (task, frozen/unfrozen) configuration runs in a fresh process so that
its peak memory is its own: on CUDA ``torch.cuda.max_memory_allocated``; on
CPU the growth of the process's peak resident set
(``resource.getrusage(...).ru_maxrss``) from just before the warm-up batch
to the end (activations, gradients, optimizer state). Times are wall-clock
seconds and, on CPU, the process's CPU seconds too (stable when other jobs
share the machine; one torch thread by default). The cache comparison
times whole epochs of ``--cache_utterances`` one-second utterances (KWS
head, batch 32) in one process per backbone shape: an epoch that fills the
cache, then a recomputed and a cached epoch.
"""
import argparse
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# task: (batch size of paper 003 Table 3, average seconds of its dataset (Fig. 1)); PR and
# IC (paper 001, not in Table 3): the batch size of their recipes' YAMLs, LibriSpeech's and
# Fluent Speech Commands' average lengths
TASKS = {"KWS": (32, 1.0), "SF": (8, 2.7), "ER": (4, 4.6), "SID/ASV": (8, 8.3), "IC": (32, 2.3),
         "ASR": (6, 12.7), "PR": (16, 12.7)}
SEQUENCE_TASKS = {"SF": 60, "ASR": 32, "PR": 42}  # CTC tokens (characters / phonemes)
MICRO = Path(__file__).resolve().parents[1] / "recipes" / "downstream" / "overrides" / "micro.yaml"


def micro_config():
    import yaml

    from speechbrain_ext.models.registry import backbone_config

    return backbone_config(yaml.safe_load(MICRO.read_text())["backbone_config"])


def build_backbone(shape, folder):
    """A random backbone of ``shape`` (``micro`` or a zoo name) saved under
    ``folder``; returns its path."""
    from speechbrain_ext.models.registry import build_backbone as build, save_backbone
    from speechbrain_ext.models.zoo import zoo_config

    torch.manual_seed(0)
    config = micro_config() if shape == "micro" else zoo_config(shape)
    return str(save_backbone(build(config), Path(folder) / f"{shape}.ckpt"))


def make_head(task, dim, micro):
    """(head, number of classes or None for CTC) as the recipes build it."""
    from speechbrain_ext.downstream import MeanPoolClassifier, XvectorClassifier

    if task in ("KWS", "ER", "IC"):
        return MeanPoolClassifier(dim, {"KWS": 12, "ER": 4, "IC": 24}[task]), None
    if task == "SID/ASV":
        from speechbrain.lobes.models.Xvector import Xvector

        channels, embedding = ([64] * 4 + [128], 64) if micro else ([512] * 4 + [1500], 512)
        xvector = Xvector(in_channels=dim, tdnn_channels=channels, lin_neurons=embedding)
        return XvectorClassifier(xvector, torch.nn.Linear(embedding, 1251)), None
    from speechbrain_ext.downstream.ctc_head import CTCHead  # part of the CTC recipes

    size = 64 if micro else 1024
    layers = 0 if task == "PR" else 2  # PR: SUPERB's linear head
    return CTCHead(dim, SEQUENCE_TASKS[task], project_dim=size, rnn_layers=layers,
                   rnn_size=size), SEQUENCE_TASKS[task]


def available_tasks():
    try:
        from speechbrain_ext.downstream.ctc_head import CTCHead  # noqa: F401
        return list(TASKS)
    except ImportError:
        return [t for t in TASKS if t not in SEQUENCE_TASKS]


def cpu_seconds():
    """CPU time of this process (every thread): robust to other load on a
    shared machine, unlike wall-clock time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def step_time(queue, source, task, freeze, batches, device, micro, threads):
    """One configuration in its own process: (wall seconds per batch, CPU
    seconds per batch, peak MiB)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from speechbrain_ext.downstream import Upstream

    batch, seconds = TASKS[task]
    upstream = Upstream(source, freeze=freeze).to(device).train()
    head, tokens = make_head(task, upstream.output_dim, micro)
    head = head.to(device).train()
    params = [p for p in list(upstream.parameters()) + list(head.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, 1e-4)
    wav = torch.randn(batch, int(seconds * 16000), device=device)
    lens = torch.ones(batch, device=device)

    def train_step():
        feats, rel = upstream(wav, lens)
        if tokens:  # CTC over random token sequences of a sixth of the frames
            frames = torch.round(rel * feats.shape[1]).long()
            log_probs = head(feats, frames)
            length = max(1, feats.shape[1] // 6)
            targets = torch.randint(1, tokens, (batch, length), device=device)
            loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, frames,
                                                torch.full((batch,), length), zero_infinity=True)
        else:
            loss = torch.nn.functional.cross_entropy(
                head(feats, rel), torch.zeros(batch, dtype=torch.long, device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # CPU: the peak resident set grows from here (the warm-up step included:
    # its activations, gradients and optimizer state count)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    train_step()  # warm-up (allocator, optimizer state)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    for _ in range(batches):
        train_step()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    queue.put(((time.perf_counter() - start) / batches, (cpu_seconds() - cpu_start) / batches,
               peak))


def epoch_times(queue, source, utterances, device, cache_folder, threads):
    """Seconds (wall and CPU) of a frozen KWS epoch: filling the cache,
    recomputed, cached."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from speechbrain_ext.downstream import MeanPoolClassifier, Upstream

    batch = 32
    wavs = torch.randn(utterances, 16000)
    ids = [f"utt{i}" for i in range(utterances)]
    results = {}
    for name, cache in (("fill", cache_folder), ("recomputed", None), ("cached", cache_folder)):
        upstream = Upstream(source, freeze=True, cache_folder=cache).to(device).train()
        head = MeanPoolClassifier(upstream.output_dim, 12).to(device)
        optimizer = torch.optim.Adam([*head.parameters(), *upstream.layer_sum.parameters()])
        if device == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), cpu_seconds()
        for first in range(0, utterances, batch):
            wav = wavs[first:first + batch].to(device)
            feats, rel = upstream(wav, torch.ones(len(wav), device=device),
                                  ids=ids[first:first + batch])
            loss = torch.nn.functional.cross_entropy(
                head(feats, rel), torch.zeros(len(wav), dtype=torch.long, device=device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        results[name] = time.perf_counter() - start
        results[f"{name}_cpu"] = cpu_seconds() - cpu_start
        results[f"{name}_hits"] = upstream.cache_hits
    queue.put(results)


def progress(message):
    """A progress line on standard error (the tables stay alone on stdout)."""
    print(f"[downstream_frozen_vs_unfrozen] {message}", file=sys.stderr, flush=True)


def in_process(target, *args):
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(queue, *args))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[2:4]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("micro", "base"), default="micro",
                        help="backbone shape (random weights) and head sizes")
    parser.add_argument("--backbone", default=None, help="a checkpoint, not a random backbone")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per configuration")
    parser.add_argument("--tasks", nargs="*", default=None, choices=list(TASKS),
                        help="default: every task whose head is importable; none: skip part 1")
    parser.add_argument("--cache_sizes", nargs="*", default=["micro", "w2v2_base"],
                        help="backbone shapes of the cached-vs-recomputed epochs (micro or a "
                             "zoo name); none: skip part 2")
    parser.add_argument("--cache_utterances", type=int, default=64,
                        help="one-second utterances per cached / recomputed epoch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)),
                        help="torch CPU threads per measurement (default: OMP_NUM_THREADS, else "
                             "1: stable on a shared machine)")
    parser.add_argument("--quick", action="store_true",
                        help="KWS only, 1 timed batch, the micro cache epoch on 32 utterances")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks = args.tasks or ["KWS"]
        args.batches, args.cache_sizes, args.cache_utterances = 1, ["micro"], 32
    tasks = available_tasks() if args.tasks is None else args.tasks
    paper_size = [shape for shape in args.cache_sizes if shape != "micro"]
    if paper_size or args.size == "base":
        progress(f"paper-size backbones: {', '.join(paper_size + (['base'] if args.size == 'base' else []))} "
                 "(minutes per configuration on a CPU; --quick or --cache_sizes micro for a short run)")
    steps = 2 * len(tasks) + len(args.cache_sizes)
    done, started = 0, time.time()

    def step(what):
        nonlocal done
        done += 1
        elapsed = time.time() - started
        eta = f", about {elapsed / (done - 1) * (steps - done + 1):.0f} s left" if done > 1 else ""
        progress(f"[{done}/{steps}] {what} ({elapsed:.0f} s so far{eta})")
    folder = tempfile.mkdtemp()
    try:
        micro = args.size == "micro"
        source = args.backbone or build_backbone("micro" if micro else "w2v2_base", folder)
        memory = "peak CUDA MiB" if args.device == "cuda" else "peak RSS growth MiB"
        print(f"backbone: {args.backbone or args.size + ' shape, random weights'}; "
              f"{'micro' if micro else 'paper-scale'} heads; device {args.device} "
              f"({args.threads} CPU threads); {args.batches} timed batches after one warm-up; "
              f"s = wall seconds, cpu = CPU seconds of the process; memory = {memory}",
              flush=True)
        if tasks:
            print("| task | batch | audio s | s/batch froz. | s/batch unfroz. | cpu/batch froz. | "
                  "cpu/batch unfroz. | unfroz./froz. (cpu) | MiB froz. | MiB unfroz. |")
            print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
        for task in tasks:
            frozen, unfrozen = (step(f"{task} {'frozen' if freeze else 'unfrozen'}") or
                                in_process(step_time, source, task, freeze, args.batches,
                                           args.device, micro, args.threads)
                                for freeze in (True, False))
            batch, seconds = TASKS[task]
            print(f"| {task} | {batch} | {seconds} | {frozen[0]:.3f} | {unfrozen[0]:.3f} | "
                  f"{frozen[1]:.3f} | {unfrozen[1]:.3f} | {unfrozen[1] / frozen[1]:.2f}x | "
                  f"{frozen[2]:.0f} | {unfrozen[2]:.0f} |", flush=True)
        if args.cache_sizes:
            print(f"\nfrozen KWS epoch of {args.cache_utterances} one-second utterances "
                  f"(batch 32), seconds:")
            print("| backbone | s filling the cache | s recomputed | s cached | "
                  "recomputed / cached (wall) | recomputed / cached (cpu) |")
            print("|---|---|---|---|---|---|", flush=True)
        for shape in args.cache_sizes:
            step(f"cache epochs, {shape} backbone")
            path = build_backbone(shape, folder)
            cache = Path(folder) / f"cache_{shape}"
            times = in_process(epoch_times, path, args.cache_utterances, args.device, str(cache),
                               args.threads)
            assert times["cached_hits"] == args.cache_utterances, times  # every read a cache hit
            print(f"| {shape} | {times['fill']:.2f} | {times['recomputed']:.2f} | "
                  f"{times['cached']:.3f} | {times['recomputed'] / times['cached']:.1f}x | "
                  f"{times['recomputed_cpu'] / times['cached_cpu']:.1f}x |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
