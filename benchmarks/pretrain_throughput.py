"""Training-step throughput of the pre-training objectives on this machine,
against the bare backbone and against HF transformers' Wav2Vec2ForPreTraining.

    python benchmarks/pretrain_throughput.py                       # tiny, 8 x 5 s
    python benchmarks/pretrain_throughput.py --size micro
    python benchmarks/pretrain_throughput.py --size base --batch 2 --steps 1

Every variant is a full training step (forward, backward, Adam step; for the
non-contrastive model also the EMA update of the target), on the SAME random
batch, all models built from the same backbone architecture:

  (a) backbone  bare Wav2Vec2Backbone, loss last_hidden_state.pow(2).mean(),
                no time masking (the reference)
  (b) contrast  Wav2Vec2ContrastiveModel (span mask, quantizer and 100
                negatives for the masked frames only, fairseq loss)
  (c) noncontr  NonContrastiveModel (online + no-grad target view, Barlow
                losses, EMA update)
  (d) hf        transformers Wav2Vec2ForPreTraining, same architecture, with
                mask / negatives from its _compute_mask_indices /
                _sample_negative_indices (computed inside the timed step:
                our step draws its mask and negatives inside too)

(a)-(c) run in fp32 and under torch.autocast("cpu", dtype=torch.bfloat16)
(weights stay fp32); (d) in fp32.

Timing: all models live in one process; each repeat runs ``--steps`` steps of
every variant in turn (variants interleaved, their order rotated each repeat)
after one untimed warm-up step each. Step times are medians over repeats;
ratios are "paired": the median over repeats of the ratio within each repeat,
so that a slow phase of a shared machine hits both sides of a ratio alike
("best", the ratio of the fastest steps, is printed too). The CPU time other
processes used during the timing is printed: on a busy machine, small
multi-threaded ops wait for a core (each costs milliseconds instead of
microseconds), which slows every variant and penalises those with many small
ops; compare runs taken on a quiet machine.

Memory: ``peak RSS +`` is how far the resident set size of the process rises
above its level before the first step during two training steps (the first
one allocates Adam's state), measured in a fresh subprocess per variant:
Linux ``/proc/self/status`` VmHWM (peak RSS) after the steps, minus VmRSS
just before them, with the peak reset to the current RSS first
(``/proc/self/clear_refs`` = 5). It covers activations kept for backward,
gradients, Adam state and the step's temporaries, not weights, imports or
the interpreter; ``peak RSS`` is the subprocess's absolute peak. (tracemalloc
does not see torch's allocations; ``ru_maxrss`` survives exec, so it would
report the parent's peak.)
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from speechbrain_ext.analysis.resources import cpu_model  # noqa: E402
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config  # noqa: E402
from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel  # noqa: E402
from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel  # noqa: E402

SAMPLE_RATE = 16000
MODELS = ("backbone", "contrast", "noncontr", "hf")
LABELS = {"backbone": "(a) backbone", "contrast": "(b) contrastive",
          "noncontr": "(c) non-contrastive", "hf": "(d) HF ForPreTraining"}

# Contrastive heads per size: (codevector_dim, final_dim); G=2, V=320, K=100 always.
HEADS = {"micro": (64, 64), "tiny": (256, 256), "base": (256, 256)}


def backbone_config(size, layerdrop):
    if size == "micro":
        return Wav2Vec2Config.micro(layerdrop=layerdrop)
    if size == "tiny":  # wav2vec2-tiny of the SEW paper, ~11 M parameters
        return Wav2Vec2Config(conv_layers=[(256, 10, 5)] + [(256, 3, 2)] * 4 + [(256, 2, 2)] * 2,
                              dim=256, num_layers=12, num_heads=4, ffn_dim=1024,
                              layerdrop=layerdrop)
    if size == "base":
        return Wav2Vec2Config(layerdrop=layerdrop)
    raise ValueError(size)


def hf_pretraining_config(cfg, codevector_dim, final_dim):
    import transformers

    from speechbrain_ext.interop.hf import ours_to_hf_config

    values = ours_to_hf_config(cfg)
    values.update(architectures=["Wav2Vec2ForPreTraining"], num_negatives=100,
                  codevector_dim=codevector_dim, proj_codevector_dim=final_dim,
                  num_codevector_groups=2, num_codevectors_per_group=320,
                  mask_time_prob=0.65, mask_time_length=10, mask_time_min_masks=2,
                  feat_quantizer_dropout=0.1, contrastive_logits_temperature=0.1,
                  diversity_loss_weight=0.1)
    return transformers.Wav2Vec2Config(**values)


class Runner:
    """One model + Adam; ``step(wav, precision)`` is one full training step."""

    def __init__(self, kind, cfg, size, seed):
        self.kind = kind
        codevector_dim, final_dim = HEADS[size]
        torch.manual_seed(seed)  # same backbone initialisation for (a)-(c)
        backbone = Wav2Vec2Backbone(cfg)
        if kind == "backbone":
            self.model = backbone
        elif kind == "contrast":
            self.model = Wav2Vec2ContrastiveModel(backbone=backbone, codevector_dim=codevector_dim,
                                                  final_dim=final_dim, num_negatives=100)
        elif kind == "noncontr":
            self.model = NonContrastiveModel(backbone=backbone)
        elif kind == "hf":
            import transformers

            self.model = transformers.Wav2Vec2ForPreTraining(
                hf_pretraining_config(cfg, codevector_dim, final_dim))
            # same backbone weights (our names are HF's)
            missing, unexpected = self.model.wav2vec2.load_state_dict(backbone.state_dict(),
                                                                      strict=False)
            assert not unexpected, unexpected
        else:
            raise ValueError(kind)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.num_params = sum(p.numel() for p in params)
        self.optimizer = torch.optim.Adam(params, lr=1e-5)
        self.updates = 0

    def loss(self, wav):
        if self.kind == "backbone":
            return self.model(wav).last_hidden_state.float().pow(2).mean()
        if self.kind in ("contrast", "noncontr"):
            return self.model(wav)["loss"]
        from transformers.models.wav2vec2.modeling_wav2vec2 import (_compute_mask_indices,
                                                                    _sample_negative_indices)
        config = self.model.config
        batch, samples = wav.shape
        frames = int(self.model._get_feat_extract_output_lengths(samples))
        mask = _compute_mask_indices((batch, frames), mask_prob=config.mask_time_prob,
                                     mask_length=config.mask_time_length,
                                     min_masks=config.mask_time_min_masks)
        negatives = _sample_negative_indices((batch, frames), config.num_negatives,
                                             mask_time_indices=mask)
        mask = torch.tensor(mask, dtype=torch.long)
        negatives = torch.tensor(negatives, dtype=torch.long)
        return self.model(wav, mask_time_indices=mask, sampled_negative_indices=negatives).loss

    def step(self, wav, precision):
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=(precision == "bf16")):
            loss = self.loss(wav)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        if hasattr(self.model, "after_optimizer_step"):
            self.model.after_optimizer_step(self.updates)
        value = float(loss.detach())
        if value != value:
            raise FloatingPointError(f"{self.kind}: NaN loss")
        return value


def make_batch(batch, seconds, seed):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(seconds * SAMPLE_RATE), generator=g)


def variants(precisions):
    out = [("backbone", p) for p in precisions] + [("contrast", p) for p in precisions] \
        + [("noncontr", p) for p in precisions]
    if "fp32" in precisions:
        out.append(("hf", "fp32"))
    return out


def num_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
                                if f in flags) or "-"
    except OSError:
        pass
    return "?"


def proc_status_kib(field):
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_probe(args):
    """Subprocess body: peak RSS over two steps of one variant (JSON on stdout)."""
    kind, precision = args.memory_probe
    torch.set_num_threads(args.threads)
    cfg = backbone_config(args.size, args.layerdrop)
    runner = Runner(kind, cfg, args.size, args.seed)
    wav = make_batch(args.batch, args.seconds, args.seed)
    reset = reset_peak_rss()
    before = proc_status_kib("VmRSS")
    for _ in range(2):
        runner.step(wav, precision)
    peak = proc_status_kib("VmHWM")
    if not reset:  # peak may predate the steps (model creation): report what we know
        before = min(before, peak)
    print(json.dumps({"delta_mib": (peak - before) / 1024, "peak_mib": peak / 1024,
                      "reset": reset}))


def measure_memory(args, kind, precision):
    command = [sys.executable, str(Path(__file__).resolve()), "--size", args.size,
               "--batch", str(args.batch), "--seconds", str(args.seconds),
               "--layerdrop", str(args.layerdrop), "--seed", str(args.seed),
               "--threads", str(args.threads),
               "--memory-probe", kind, precision]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def busy_cpu_seconds():
    """CPU seconds spent by all processes of the machine so far (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("micro", "tiny", "base"), default="tiny")
    parser.add_argument("--batch", type=int, default=None,
                        help="utterances per batch (default 8; 2 for base)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per utterance")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per variant per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"),
                        default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the CPUs this process may use)")
    parser.add_argument("--layerdrop", type=float, default=0.0,
                        help="layerdrop of all models (0: every step does the same work)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--no-hf", action="store_true", help="skip (d)")
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "PRECISION"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = 2 if args.size == "base" else 8
    if args.threads is None:
        args.threads = num_threads()
    if args.memory_probe:
        return memory_probe(args)

    torch.set_num_threads(args.threads)
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
        args.no_hf = True
    print(f"machine : {cpu_model()} ({cpu_flags()}), {num_threads()} usable CPUs, "
          f"torch threads {torch.get_num_threads()}")
    print(f"software: python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {hf_version}")

    cfg = backbone_config(args.size, args.layerdrop)
    wav = make_batch(args.batch, args.seconds, args.seed)
    audio = args.batch * args.seconds
    todo = [v for v in variants(args.precision) if not (args.no_hf and v[0] == "hf")]
    runners = {kind: Runner(kind, cfg, args.size, args.seed) for kind in dict.fromkeys(k for k, _ in todo)}
    frames = int(runners["backbone"].model.frame_lengths(wav.shape[1]))
    print(f"model   : {args.size} (conv {cfg.conv_layers[0][0]}x{len(cfg.conv_layers)}, d{cfg.dim}, "
          f"L{cfg.num_layers}, heads {cfg.num_heads}, ffn {cfg.ffn_dim}, layerdrop {cfg.layerdrop}); "
          "trainable params: " + ", ".join(f"{k} {r.num_params / 1e6:.2f} M" for k, r in runners.items()))
    print(f"batch   : {args.batch} x {args.seconds:g} s = {audio:g} s of audio, {frames} frames "
          f"per utterance; {args.steps} timed step(s) x {args.repeats} interleaved repeats per "
          "variant (+1 warm-up step), Adam")

    for kind, precision in todo:  # warm-up (Adam state, autocast caches, allocator)
        runners[kind].step(wav, precision)
    times = {v: [] for v in todo}
    cpu_times = {v: [] for v in todo}
    wall0, busy0, own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    for repeat in range(args.repeats):
        shift = repeat % len(todo)
        for v in todo[shift:] + todo[:shift]:
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                runners[v[0]].step(wav, v[1])
            times[v].append((time.perf_counter() - start) / args.steps)
            cpu_times[v].append((time.process_time() - cpu_start) / args.steps)
            print(f"  repeat {repeat + 1}/{args.repeats} {v[0]:>8} {v[1]}: "
                  f"{1000 * times[v][-1]:8.1f} ms/step", flush=True)
    wall = time.perf_counter() - wall0
    busy1 = busy_cpu_seconds()
    others = None if busy0 is None else max(0.0, (busy1 - busy0) - (own_cpu_seconds() - own0)) / wall
    step = {v: statistics.median(t) for v, t in times.items()}
    del runners

    memory = {}
    if not args.no_memory:
        for v in todo:
            memory[v] = measure_memory(args, *v)

    print()
    if others is not None:
        print(f"other processes kept {others:.2f} of {os.cpu_count()} CPUs busy on average "
              f"during the {wall:.0f} s of timing (0 = quiet machine)")
    header = (f"{'variant':<24}{'prec':<6}{'audio s/s':>10}{'ms/step':>10}{'min ms':>9}"
              f"{'max ms':>9}{'CPU ms':>9}{'peak RSS +':>12}{'peak RSS':>10}")
    print(header)
    print("-" * len(header))
    for v in todo:
        t = times[v]
        mem = memory.get(v)
        mem_text = (f"{mem['delta_mib']:>8.0f} MiB{mem['peak_mib']:>6.0f} MiB" if mem
                    else f"{'n/a':>12}{'n/a':>10}")
        print(f"{LABELS[v[0]]:<24}{v[1]:<6}{audio / step[v]:>10.2f}{1000 * step[v]:>10.1f}"
              f"{1000 * min(t):>9.0f}{1000 * max(t):>9.0f}"
              f"{1000 * statistics.median(cpu_times[v]):>9.0f}{mem_text}")
    print("-" * len(header))
    print("audio s/s and ms/step: median over the repeats (wall clock). CPU ms: median CPU "
          "time of this process per step, all threads\n(a measure of work, less sensitive to "
          "other processes; with >1 thread it includes threads spinning at barriers).")
    print("peak RSS + = rise of the peak resident "
          "set over 2 training steps\nabove the RSS before them (fresh subprocess per variant; "
          "model, optimizer and batch already built); peak RSS = that subprocess's absolute peak.")

    def ratios(x, y):
        """Throughput of x over y: median over repeats of the ratio within each
        repeat (paired, so slow phases of the machine cancel), min/min, and
        the paired ratio of CPU times."""
        if x not in times or y not in times:
            return None
        paired = statistics.median(ty / tx for tx, ty in zip(times[x], times[y]))
        cpu = statistics.median(ty / tx for tx, ty in zip(cpu_times[x], cpu_times[y]))
        return paired, min(times[y]) / min(times[x]), cpu

    print("\nthroughput ratios (paired: median over repeats of the per-repeat wall-clock ratio; "
          "best: ratio of the fastest steps;\nCPU: paired ratio of CPU times; "
          "targets are judged on 'paired'):")
    rows = []
    for p in args.precision:
        rows.append((f"(b)/(a) contrastive / backbone, {p}",
                     ratios(("contrast", p), ("backbone", p)), 0.80))
        rows.append((f"(c)/(a) non-contrastive / backbone, {p}",
                     ratios(("noncontr", p), ("backbone", p)), None))
    rows.append(("(b)/(d) contrastive / HF ForPreTraining, fp32",
                 ratios(("contrast", "fp32"), ("hf", "fp32")), 2.0))
    if "fp32" in args.precision and "bf16" in args.precision:
        for kind in ("backbone", "contrast", "noncontr"):
            rows.append((f"bf16 / fp32, {LABELS[kind]}", ratios((kind, "bf16"), (kind, "fp32")),
                         None))
    print(f"  {'':<48}{'paired':>8}{'best':>8}{'CPU':>8}")
    for name, value, target in rows:
        if value is None:
            continue
        verdict = "" if target is None else (
            f"  target >= {target:g}: {'MET' if value[0] >= target else 'NOT met'}")
        print(f"  {name:<48}{value[0]:7.2f}x{value[1]:7.2f}x{value[2]:7.2f}x{verdict}")


if __name__ == "__main__":
    main()
