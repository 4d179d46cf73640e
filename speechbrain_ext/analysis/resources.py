"""Resource cost of SSL training against sequence length, batch size and
precision (paper 003 section 5: Table 2, Table 3, Figs. 2 and 3; paper 000
Table 5): seconds per batch, peak memory, FLOPs of the training step, audio
seconds per second and, on a GPU, the model-FLOPs utilisation.

    python -m speechbrain_ext.analysis.resources --quick --model w2v2_micro
    python -m speechbrain_ext.analysis.resources --model w2v2_base          # a GPU: the paper's grid
    python -m speechbrain_ext.analysis.resources --model w2v2_base --memory_gb 11   # an 11 GB device
    python -m speechbrain_ext.analysis.resources --parts ratio              # the "about 15x" check

Parts (``--parts``, default all four):

* ``pretrain`` (Table 2 / Fig. 2): one pre-training step of a zoo model
  (``--model``) per cell of lengths x batches x precisions, for each
  ``--objective``: ``contrastive`` (``Wav2Vec2ContrastiveModel``: span mask,
  quantizer, 100 negatives), ``noncontrastive`` (``NonContrastiveModel``:
  online + no-grad target, Barlow losses, EMA update; batch >= 2) or
  ``backbone`` (the bare backbone, loss ``last_hidden_state.pow(2).mean()``).
  Heads: 256 / 256 (micro models 64 / 64, as benchmarks/pretrain_throughput.py);
  SEW / SEW-D contrastive use MLP heads of 4096 (paper 002).
* ``downstream`` (Table 3): one training step with a frozen and with an
  unfrozen upstream, per task row (paper 003's batch sizes and average lengths
  by default): ``downstream.upstream.Upstream`` loaded from a random backbone
  of the ``--model`` shape, features = its softmax-weighted layer sum
  (``--combine weighted``; ``auto`` = Upstream's default, last layer when
  unfrozen), unfrozen = everything but the CNN trains (Upstream's rule), and
  the same small head for every row: ``MeanPoolClassifier`` (Linear 256, mean
  over frames, Linear to 12 classes). The paper's task heads (x-vector,
  BiLSTM CTC) are in benchmarks/downstream_frozen_vs_unfrozen.py; here the
  rows differ by batch and length only, i.e. this measures the upstream.
* ``timeline`` (Fig. 3): memory sampled every ``--sample_ms`` during
  ``--timeline_steps`` downstream steps (from before the model is built),
  frozen and unfrozen, for the ``--timeline_tasks`` (KWS and ER as the paper).
* ``ratio``: FLOPs of one ``--ratio_model`` (wav2vec2-base) pre-training step
  (``--ratio_objective``, batch 1) on a 15 s clip over a 1 s clip (paper 003:
  "approximately 15x"), with the CNN / transformer / attention split.

Every step is a full training step: zero_grad, forward (under autocast for
bf16 / fp16), backward, AdamW step, and the objective's after-step hook (EMA
of the non-contrastive target, Gumbel temperature). Layerdrop is 0 by default
(``--layerdrop``) so every step does the same work; dropouts are the zoo's.

Precisions. ``fp32``; ``bf16``: ``torch.autocast(dtype=bfloat16)``, fp32
weights, no loss scaling; ``fp16`` (paper 003's "mixed precision"):
``torch.autocast(dtype=float16)`` with ``torch.amp.GradScaler`` on CUDA and
on the CPU, where torch >= 2.3 has both (CPU autocast lists fp16 ops; checked
at run time by ``fp16_cpu_support``: where it fails the cells say so). On a
CPU without AVX512-FP16 / AMX-FP16 the fp16 kernels convert to fp32 and are
slower than fp32: the CPU fp16 numbers say what the step costs there, not what
a GPU's tensor cores gain.

Timing: ``--warmup`` untimed steps, then ``--repeats`` timed ones (CUDA
synchronised around each); s/batch is their median (min and max in the
CSV), plus the process CPU seconds per step on the CPU (all threads; less
sensitive to other jobs on a shared machine). ``OMP_NUM_THREADS`` sets
``torch.set_num_threads`` when ``--threads`` is not given.

Memory. Each cell has its own peak:

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``
  at the start of the cell. ``peak MiB`` = the highest allocation of the cell
  above what was allocated before its model was built (weights, gradients,
  AdamW state, activations, temporaries; not the CUDA context nor the
  allocator's cache: ``reserved_mib`` in the CSV is ``max_memory_reserved``).
* CPU: each cell runs in a fresh process forked from a forkserver that has
  imported everything (no import cost per cell, no memory left over by other
  cells, and a cell killed by the kernel's OOM killer is an OOM cell, not a
  dead sweep). The peak resident set of that process is read from Linux's
  ``VmHWM`` after resetting it to the current RSS (``/proc/self/clear_refs``
  = 5) just before the first step; ``peak MiB`` = that peak minus the RSS
  before the model was built (weights + everything the steps allocate, the
  same quantity as on CUDA; the interpreter and torch's own ~0.3 GB are not
  in it). Before that baseline the cell runs one step of the micro model of
  the same family, objective and precision (``prime``): a fresh process's
  first ops page in torch's code and build its thread pools and kernel caches,
  ~0.1 GB that would otherwise appear in every cell's peak. ``ru_maxrss`` is
  not used: it is a per-process maximum that also holds what the process (or
  its parent, across fork / exec) reached earlier, so it cannot be reset per
  cell. Where ``clear_refs`` cannot be written the
  peak comes from a thread sampling ``/proc/self/statm`` every
  ``--sample_ms`` (it can miss spikes shorter than that). With
  ``--isolate none`` cells share the process (memory freed by one cell may
  stay in the allocator and hide part of the next cell's rise: fine for
  tests, not for numbers).
* ``step MiB`` (CSV ``step_mib``): the same peak above the memory just before
  the first step (model and batch built): what the steps themselves add.

OOM. A cell raising ``torch.cuda.OutOfMemoryError``, a ``RuntimeError`` with
"out of memory" or "DefaultCPUAllocator: can't allocate memory", or
``MemoryError`` (or, isolated, killed by SIGKILL) is recorded as ``OOM``, its
memory is freed (``gc``, ``torch.cuda.empty_cache``) and the sweep goes on.
Cells at least as large (same objective and precision, batch and length >=)
as an OOM cell are recorded as OOM without running (``--no_infer_oom`` runs
them). ``--memory_fraction F`` (CUDA) caps the process with
``torch.cuda.set_per_process_memory_fraction`` to emulate the paper's smaller
devices on a larger GPU; ``--memory_gb G`` computes F = G GiB / the device's
memory. The cap covers the caching allocator, not the CUDA context (a few
hundred MiB on a real device of that size). On the CPU ``--memory_gb`` marks
the cells whose measured peak exceeds it ``OOM`` (note "budget"), after
running them.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one fp32 training
step (forward + backward; the optimizer's element-wise work is not counted)
after the timed steps, once per (objective, batch, length). It counts matrix
products (2 x M x N x K; a bias add is not counted), convolutions and
attention; not element-wise ops, norms, softmax or gathers. The backward of
a grouped convolution is counted with ``_conv_backward_flops``: torch 2.11's
formula counts its weight gradient ``groups`` times too high (+17 % on a
wav2vec2-base step, all from the 16-group positional conv). On the CPU the
step runs with the math SDPA backend: the fused CPU attention kernel is not in
the counter's registry (the CUDA flash / efficient / cuDNN kernels are).
A (batch, length) whose every cell ran out of memory gets the count of the
largest counted batch at that length scaled by the batch ratio (exact for the
backbone and non-contrastive steps, within the random number of masked frames
for the contrastive one), flagged ``flops_estimated``. MFU (GPU) = FLOPs /
seconds / the device's dense peak for the cell's precision (``PEAK_TFLOPS``,
fp32 cells use the TF32 peak when TF32 matmuls are enabled;
``--peak_tflops`` overrides, on a CPU too). FlopCounterMode cannot run the
models on the meta device (the span masks and frame counts call ``.item()``),
so the ratio runs the two steps for real, batch 1.

Outputs (``--out``, default ``results/resources``; ``--tag``, default
``<model>_<device>``): ``<tag>_pretrain.csv`` and ``<tag>_downstream.csv``
(one row per cell), ``<tag>.md`` (Table 2 / Table 3 layouts: rows = length,
columns = batch x precision; rows = task, columns = Froz. / Unfroz. per
precision; for seconds, memory, FLOPs, audio s/s, MFU), ``<tag>_fig2.png``
(memory and FLOPs against length, a line per batch), ``<tag>_fig3.png`` and
``<tag>_timeline.csv`` (memory over the downstream run).
"""
import argparse
import csv
import gc
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from speechbrain_ext.downstream.brain import MeanPoolClassifier
from speechbrain_ext.downstream.upstream import Upstream
from speechbrain_ext.models.components import cnn_features
from speechbrain_ext.models.registry import backbone_config, build_backbone, save_backbone
from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel
from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

SAMPLE_RATE = 16000
MIB = 2 ** 20
PRECISIONS = ("fp32", "bf16", "fp16")
OBJECTIVES = ("contrastive", "noncontrastive", "backbone")
PARTS = ("pretrain", "downstream", "timeline", "ratio")
MODES = ("frozen", "unfrozen")
# paper 003 Table 3: task -> (batch size, average utterance seconds of its dataset, Fig. 1)
TABLE3_TASKS = {"KWS": (32, 1.0), "SF": (8, 2.7), "ER": (4, 4.6), "SID/ASV": (8, 8.3),
                "ASR": (6, 12.7)}
DOWNSTREAM_CLASSES = 12  # the small head's classes (KWS's 12 commands) for every row
HEAD_PROJECTION = 256  # MeanPoolClassifier's projection (s3prl's)

DEFAULTS = dict(lengths=[1.0, 5.0, 10.0, 15.0], batches=[2, 4, 8, 16], repeats=3, warmup=1,
                downstream_tasks=list(TABLE3_TASKS), timeline_tasks=["KWS", "ER"],
                timeline_steps=10)
QUICK = dict(lengths=[1.0, 2.0], batches=[2, 4], repeats=2, warmup=1,
             downstream_tasks=["KWS:4:1", "ER:2:2"], timeline_tasks=["KWS"], timeline_steps=3)

# Dense (no sparsity) datasheet peaks in TFLOP/s, matched against
# torch.cuda.get_device_name() in this order (first substring found wins).
# fp32 = CUDA cores; tf32 / bf16 / fp16 = tensor cores. None: no such units.
PEAK_TFLOPS = [
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.0, "fp16": 835.0}),
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.0, "fp16": 835.0}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM (HBM3)
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    ("V100", {"fp32": 15.7, "tf32": None, "bf16": None, "fp16": 125.0}),  # SXM2
]

CSV_COLUMNS = ["part", "device", "device_name", "model", "objective", "task", "batch", "seconds",
               "audio_s", "precision", "status", "note", "s_per_batch", "s_min", "s_max",
               "cpu_s_per_batch", "peak_mib", "step_mib", "reserved_mib", "gflops",
               "flops_estimated", "audio_s_per_s", "achieved_tflops", "peak_tflops", "mfu",
               "loss", "threads", "warmup", "repeats", "memory_method", "torch"]


# ----------------------------------------------------------------------------- memory

def rss_bytes():
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak so far is the best there is
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def hwm_bytes():
    """Peak resident set size of this process (``VmHWM``) or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_hwm():
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return hwm_bytes() is not None
    except OSError:
        return False


class MemorySampler(threading.Thread):
    """Samples ``read()`` (bytes) every ``interval`` seconds in a daemon thread:
    ``samples`` is a list of (seconds since start, bytes)."""

    def __init__(self, read, interval=0.005):
        super().__init__(daemon=True)
        self.read, self.interval = read, interval
        self.samples = []
        self._stop_event = threading.Event()
        self.t0 = time.perf_counter()

    def run(self):
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter() - self.t0, self.read()))
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        self.samples.append((time.perf_counter() - self.t0, self.read()))
        return self.samples

    def peak(self):
        return max(b for _, b in self.samples) if self.samples else None


class MemoryMeter:
    """A cell's peak memory: ``start()`` before the model is built,
    ``before_steps()`` just before the first step, ``read()`` after the last
    one -> (peak MiB above start, peak MiB above before_steps, reserved MiB
    or None, method)."""

    def __init__(self, device, sample_interval=0.005):
        self.device = torch.device(device)
        self.sample_interval = sample_interval
        self.sampler = None

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self):
        gc.collect()
        self._sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = rss_bytes()

    def before_steps(self):
        self._sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.pre = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated"
        else:
            self.pre = rss_bytes()
            self.hwm_ok = reset_hwm()
            if self.hwm_ok:
                self.method = "VmHWM (clear_refs reset)"
            else:
                self.sampler = MemorySampler(rss_bytes, self.sample_interval)
                self.sampler.start()
                self.method = f"RSS sampled every {self.sample_interval * 1000:g} ms"

    def read(self):
        self._sync()
        reserved = None
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
            reserved = torch.cuda.max_memory_reserved(self.device) / MIB
        elif self.sampler is not None:
            self.sampler.stop()
            peak = max(self.sampler.peak(), self.pre)
        else:
            peak = hwm_bytes()
        return (peak - self.base) / MIB, (peak - self.pre) / MIB, reserved, self.method


def is_oom(err):
    """Is ``err`` an out-of-memory error (CUDA, the CPU allocator, Python)?"""
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "out of memory" in text.lower() or "DefaultCPUAllocator: can't allocate memory" in text)


def free_memory(device):
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- precision

def fp16_cpu_support():
    """None if fp16 autocast + GradScaler work on the CPU in this torch, else the reason."""
    try:
        layer = torch.nn.Linear(4, 4)
        scaler = torch.amp.GradScaler("cpu")
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        with torch.autocast("cpu", dtype=torch.float16):
            out = layer(torch.randn(2, 4))
        if out.dtype != torch.float16:
            return f"CPU autocast(float16) left a Linear in {out.dtype}"
        scaler.scale(out.float().sum()).backward()
        scaler.step(optimizer)
        scaler.update()
        return None
    except Exception as err:  # older torch: no CPU fp16 autocast / GradScaler
        return f"fp16 mixed precision is not available on the CPU in torch {torch.__version__} " \
               f"({type(err).__name__}: {err})"


def precision_support(precision, device):
    """None if ``precision`` can run on ``device``, else why not."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return f"{torch.cuda.get_device_name(device)} has no bf16 support"
        return None
    if device.type == "cpu":
        return fp16_cpu_support() if precision == "fp16" else None
    return None


def autocast(device, precision):
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)


def grad_scaler(device, precision):
    return torch.amp.GradScaler(torch.device(device).type) if precision == "fp16" else None


# ----------------------------------------------------------------------------- workloads

def zoo_backbone_config(model, layerdrop=0.0):
    return backbone_config({"zoo": model, "layerdrop": layerdrop})


def contrastive_heads(model):
    """Head sizes of ``Wav2Vec2ContrastiveModel`` for zoo model ``model``."""
    if model.endswith("_micro"):
        return {"codevector_dim": 64, "final_dim": 64}
    heads = {"codevector_dim": 256, "final_dim": 256}
    if model.startswith("sew"):
        heads["mlp_hidden_dim"] = 4096  # paper 002's MLP predictor heads
    return heads


class Workload:
    """A trainable network, its AdamW and ``loss(wav, lens)``: one of the
    pre-training objectives (``part="pretrain"``) or a downstream upstream +
    head (``part="downstream"``, ``objective`` "frozen" / "unfrozen")."""

    def __init__(self, part, model, objective, device="cpu", layerdrop=0.0, seed=0,
                 checkpoint=None, combine="weighted"):
        self.part, self.objective = part, objective
        torch.manual_seed(seed)
        if part == "pretrain":
            backbone = build_backbone(zoo_backbone_config(model, layerdrop))
            if objective == "backbone":
                self.net = backbone
            elif objective == "contrastive":
                self.net = Wav2Vec2ContrastiveModel(backbone=backbone, **contrastive_heads(model))
            elif objective == "noncontrastive":
                self.net = NonContrastiveModel(backbone=backbone)
            else:
                raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
        elif part == "downstream":
            if objective not in MODES:
                raise ValueError(f"downstream objective must be one of {MODES}, got {objective!r}")
            if checkpoint is None:
                raise ValueError("a downstream workload needs the backbone checkpoint")
            upstream = Upstream(checkpoint, freeze=objective == "frozen", combine=combine)
            head = MeanPoolClassifier(upstream.output_dim, DOWNSTREAM_CLASSES, HEAD_PROJECTION)
            self.net = torch.nn.ModuleDict({"upstream": upstream, "head": head})
        else:
            raise ValueError(f"unknown part {part!r}")
        self.net.to(device).train()
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.trainable = sum(p.numel() for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=1e-5)
        self.updates = 0

    def min_batch(self):
        return 2 if self.part == "pretrain" and self.objective == "noncontrastive" else 1

    def loss(self, wav, lens=None):
        if self.part == "downstream":
            feats, rel = self.net["upstream"](wav, lens)
            logits = self.net["head"](feats, rel)
            labels = torch.zeros(wav.shape[0], dtype=torch.long, device=wav.device)
            return torch.nn.functional.cross_entropy(logits.float(), labels)
        if self.objective == "backbone":
            return self.net(wav, lens).last_hidden_state.float().pow(2).mean()
        return self.net(wav, lens)["loss"]

    def after_step(self):
        self.updates += 1
        if hasattr(self.net, "after_optimizer_step"):
            self.net.after_optimizer_step(self.updates)


def make_batch(batch, seconds, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    wav = 0.1 * torch.randn(batch, int(round(seconds * SAMPLE_RATE)), generator=generator)
    return wav.to(device), torch.ones(batch, device=device)


def training_step(work, wav, lens, precision, scaler):
    """One full training step; returns the detached loss."""
    work.optimizer.zero_grad(set_to_none=True)
    with autocast(wav.device, precision):
        loss = work.loss(wav, lens)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(work.optimizer)
        scaler.update()
    else:
        loss.backward()
        work.optimizer.step()
    work.after_step()
    return loss.detach()


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                         transposed, _output_padding, groups, output_mask, out_shape=None):
    """FLOPs of ``aten.convolution_backward`` for FlopCounterMode, grouped
    convolutions included. torch 2.11's own formula ignores ``groups`` in the
    weight gradient: it counts a grouped conv's weight gradient as if every
    output channel saw every input channel, ``groups`` times too much (the
    wav2vec2 positional conv, 16 groups: 8.0 instead of 0.9 GFLOPs for the
    backward of one second of base). The input gradient (a convolution with
    the real, per-group weight) it counts right. Same conventions as torch:
    2 FLOPs per multiply-add, bias ignored."""
    def t(shape):
        return [shape[1], shape[0]] + list(shape[2:])

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, list(out_shape[0]), not transposed)
    if output_mask[1]:
        grad_weight = list(out_shape[1])
        if transposed:
            dense = conv_flop_count(t(grad_out_shape), t(x_shape), t(grad_weight))
        else:
            dense = conv_flop_count(t(x_shape), t(grad_out_shape), t(grad_weight))
        flops += dense // max(int(groups), 1)
    return flops


FLOP_FORMULAS = {torch.ops.aten.convolution_backward: _conv_backward_flops}


def count_training_flops(step_loss, math_attention=True):
    """FLOPs of ``step_loss()`` (a callable returning the loss) and its
    backward under ``FlopCounterMode``: (total, {module: {op: flops}}).
    ``math_attention``: run SDPA through the math backend, whose matrix
    products the counter sees (needed on the CPU). Convolution backward uses
    ``_conv_backward_flops`` (grouped convolutions counted right)."""
    kernel = sdpa_kernel(SDPBackend.MATH) if math_attention else nullcontext()
    with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as counter, kernel:
        loss = step_loss()
        if loss.requires_grad:
            loss.backward()
    counts = {module: {str(op): int(v) for op, v in ops.items()}
              for module, ops in counter.get_flop_counts().items()}
    return int(counter.get_total_flops()), counts


def attention_flops(counts):
    """FLOPs of the attention products (QK^T, AV and their gradients: the
    batched matrix products under the math backend, or the fused SDPA ops)
    of every ``*.attention`` module in ``count_training_flops``'s per-module
    counts, or None where there is none. Only these per-layer modules are
    read: FlopCounterMode's attribution of backward ops to *container*
    modules is unreliable (torch 2.11 credits the CNN's convolution backward
    to ``encoder.layers``), while its per-layer counts match hand counts."""
    names = [m for m in counts if m.endswith(".attention")]
    outer = [m for m in names if not any(m != o and m.startswith(o + ".") for o in names)]
    if not outer:
        return None
    return sum(v for m in outer for op, v in counts[m].items() if "bmm" in op or "attention" in op)


def cnn_flops(backbone, wav, lens=None):
    """FLOPs of the backbone's CNN alone, forward + backward as in a full
    training step (the waveform needs no gradient; a CNN whose gradients are
    scaled by 0 runs forward only, as in the step)."""
    return count_training_flops(lambda: cnn_features(backbone, wav, lens)[0].float().pow(2).mean())[0]


def step_flops(work, wav, lens):
    """FLOPs of one fp32 training step of ``work`` (gradients discarded)."""
    work.optimizer.zero_grad(set_to_none=True)
    total, counts = count_training_flops(lambda: work.loss(wav, lens),
                                         math_attention=wav.device.type != "cuda")
    work.optimizer.zero_grad(set_to_none=True)
    return total, counts


# ----------------------------------------------------------------------------- one cell

def synchronise(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def apply_memory_fraction(device, fraction):
    if fraction and torch.device(device).type == "cuda":
        torch.cuda.set_per_process_memory_fraction(float(fraction), torch.device(device))


def micro_of(model):
    """The micro zoo model of ``model``'s architecture family."""
    family = model.split("_")[0]
    return f"{family}_micro" if family in ("w2v2", "sew", "sewd") else "w2v2_micro"


def prime(spec):
    """One step of a micro model of the same family, objective and precision
    before the memory baseline: the first ops of a fresh process page in
    torch's code and create its thread pools and kernel caches (~0.1 GB of
    RSS that is no part of the workload). Leaves at most the micro step's few
    MiB in the allocator's free lists."""
    device = spec["device"]
    objective = spec["objective"] if spec["part"] == "pretrain" else "backbone"
    work = Workload("pretrain", micro_of(spec["model"]), objective, device, 0.0, spec.get("seed", 0))
    wav, _ = make_batch(work.min_batch(), 0.5, device)
    training_step(work, wav, None, spec["precision"], grad_scaler(device, spec["precision"]))
    if spec["part"] == "downstream":  # the head's ops and the no_grad path
        head = MeanPoolClassifier(work.net.config.dim, DOWNSTREAM_CLASSES, HEAD_PROJECTION).to(device)
        with autocast(device, spec["precision"]):
            with torch.no_grad():
                feats = work.net(wav).last_hidden_state
            head(feats, torch.ones(wav.shape[0], device=device)).float().sum().backward()
    synchronise(device)
    del work, wav
    free_memory(device)


def _measure(spec):
    device = spec["device"]
    apply_memory_fraction(device, spec.get("memory_fraction"))
    if spec.get("prime", True):
        prime(spec)
    meter = MemoryMeter(device, spec.get("sample_ms", 5) / 1000)
    meter.start()
    work = Workload(spec["part"], spec["model"], spec["objective"], device,
                    spec.get("layerdrop", 0.0), spec.get("seed", 0), spec.get("checkpoint"),
                    spec.get("combine", "weighted"))
    wav, lens = make_batch(spec["batch"], spec["seconds"], device, spec.get("seed", 0))
    scaler = grad_scaler(device, spec["precision"])
    meter.before_steps()
    times, cpu_times, loss = [], [], None
    for i in range(spec["warmup"] + spec["repeats"]):
        synchronise(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = training_step(work, wav, lens, spec["precision"], scaler)
        synchronise(device)
        if i >= spec["warmup"]:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    peak, step, reserved, method = meter.read()
    result = {"status": "ok", "note": "", "s_per_batch": statistics.median(times),
              "s_min": min(times), "s_max": max(times),
              "cpu_s_per_batch": statistics.median(cpu_times) if device == "cpu" else None,
              "peak_mib": peak, "step_mib": step, "reserved_mib": reserved,
              "memory_method": method, "loss": float(loss), "threads": torch.get_num_threads()}
    if not math.isfinite(result["loss"]):
        result["note"] = "non-finite loss"
    if spec.get("count_flops"):
        result["flops"] = step_flops(work, wav, lens)[0]
    return result


def run_cell(spec):
    """Measure one cell in this process; an OOM is a result, not an error.
    ``spec``: part, model, objective, device, batch, seconds, precision,
    warmup, repeats (+ optional count_flops, checkpoint, combine, layerdrop,
    seed, memory_fraction, sample_ms)."""
    reason = precision_support(spec["precision"], spec["device"])
    if reason:
        return {"status": "unsupported", "note": reason}
    try:
        return _measure(spec)
    except Exception as err:  # noqa: BLE001 - OOM is data; anything else re-raised
        if not is_oom(err):
            raise
        note = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    # outside the except block: the traceback (and the tensors its frames hold) is gone
    free_memory(spec["device"])
    return {"status": "OOM", "note": note}


def run_timeline(spec, steps):
    """Memory over ``steps`` training steps of ``spec``'s workload, sampled
    in a thread from before the model is built: {"t": [s], "mib": [MiB],
    "step_ends": [s], "status"}. CPU: RSS above its level at the start;
    CUDA: ``torch.cuda.memory_allocated``."""
    device = torch.device(spec["device"])
    apply_memory_fraction(device, spec.get("memory_fraction"))
    if spec.get("prime", True):
        prime(spec)
    if device.type == "cuda":
        def read():
            return torch.cuda.memory_allocated(device)
        base = 0
    else:
        read = rss_bytes
        gc.collect()
        base = rss_bytes()
    sampler = MemorySampler(read, spec.get("sample_ms", 5) / 1000)
    sampler.start()
    step_ends, status, note = [], "ok", ""
    try:
        work = Workload(spec["part"], spec["model"], spec["objective"], device,
                        spec.get("layerdrop", 0.0), spec.get("seed", 0), spec.get("checkpoint"),
                        spec.get("combine", "weighted"))
        wav, lens = make_batch(spec["batch"], spec["seconds"], device, spec.get("seed", 0))
        scaler = grad_scaler(device, spec["precision"])
        for _ in range(steps):
            training_step(work, wav, lens, spec["precision"], scaler)
            synchronise(device)
            step_ends.append(time.perf_counter() - sampler.t0)
    except Exception as err:  # noqa: BLE001
        if not is_oom(err):
            sampler.stop()
            raise
        status, note = "OOM", str(err).splitlines()[0][:200]
    samples = sampler.stop()
    work = wav = None
    free_memory(device)
    return {"t": [t for t, _ in samples], "mib": [(b - base) / MIB for _, b in samples],
            "step_ends": step_ends, "status": status, "note": note}


def run_ratio(model, objective, lengths, batch, device, layerdrop=0.0, seed=0):
    """FLOPs of one training step at each of ``lengths`` (seconds), batch
    ``batch``: [{"seconds", "frames", "flops", "cnn", "rest", "attention"}]:
    the whole step, its CNN part (counted alone, ``cnn_flops``), the rest
    (transformer, projections, heads) and the attention products within it."""
    rows = []
    for seconds in lengths:
        work = Workload("pretrain", model, objective, device, layerdrop, seed)
        wav, lens = make_batch(batch, seconds, device, seed)
        total, counts = step_flops(work, wav, None)
        backbone = work.net if objective == "backbone" else work.net.wav2vec2 \
            if objective == "contrastive" else work.net.online  # the trained network
        cnn = cnn_flops(backbone, wav)
        rows.append({"seconds": seconds, "frames": int(backbone.frame_lengths(wav.shape[1])),
                     "flops": total, "cnn": cnn, "rest": total - cnn,
                     "attention": attention_flops(counts)})
        work = wav = None
        free_memory(device)
    return rows


def make_checkpoint(model, folder, layerdrop=0.0, seed=0):
    """A random backbone of zoo ``model`` saved under ``folder`` (the downstream upstream)."""
    torch.manual_seed(seed)
    path = Path(folder) / f"{model}.ckpt"
    if not path.exists():
        save_backbone(build_backbone(zoo_backbone_config(model, layerdrop)), path)
    return str(path)


# ----------------------------------------------------------------------------- isolation

_FORKSERVER_READY = False


def _context():
    global _FORKSERVER_READY
    if "forkserver" in mp.get_all_start_methods():
        context = mp.get_context("forkserver")
        if not _FORKSERVER_READY:
            # the server imports torch and this module once; every cell forks from it
            context.set_forkserver_preload([__name__])
            _FORKSERVER_READY = True
        return context
    return mp.get_context("spawn")


def _child(conn, target, kwargs, threads):
    try:
        if threads:
            torch.set_num_threads(threads)
        result = globals()[target](**kwargs)
    except BaseException as err:  # noqa: BLE001 - reported to the parent
        result = {"status": "error", "note": f"{type(err).__name__}: {err}"[:300]}
    conn.send(result)
    conn.close()


def call(target, kwargs, isolate, threads=None, timeout=None):
    """``target(**kwargs)`` (a function of this module, by name) in this
    process or, ``isolate``, in a fresh process forked from the forkserver.
    A child killed by SIGKILL (the OOM killer) returns ``status: OOM``."""
    if not isolate:
        return globals()[target](**kwargs)
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, target, kwargs, threads))
    process.start()
    sender.close()
    result = None
    try:
        if receiver.poll(timeout):
            result = receiver.recv()
    except EOFError:
        result = None
    if result is None and process.is_alive():  # timed out
        process.kill()
        process.join()
        return {"status": "timeout", "note": f"no result after {timeout} s"}
    process.join()
    if result is None:
        if process.exitcode == -9:
            return {"status": "OOM", "note": "killed by SIGKILL (the kernel's OOM killer?)"}
        return {"status": "error", "note": f"the cell's process died (exit code {process.exitcode})"}
    return result


# ----------------------------------------------------------------------------- the sweep

def parse_task(text):
    """``KWS`` (a Table 3 row) or ``NAME:BATCH:SECONDS`` -> (name, batch, seconds)."""
    if ":" in text:
        name, batch, seconds = text.rsplit(":", 2)
        return name, int(batch), float(seconds)
    if text not in TABLE3_TASKS:
        raise ValueError(f"unknown downstream task {text!r}: one of {list(TABLE3_TASKS)} or "
                         "NAME:BATCH:SECONDS")
    return (text, *TABLE3_TASKS[text])


def pretrain_specs(model, objectives, lengths, batches, precisions, common):
    """Cells of the pre-training sweep, lengths then batches ascending."""
    return [{**common, "part": "pretrain", "model": model, "objective": objective, "task": "",
             "seconds": float(seconds), "batch": int(batch), "precision": precision}
            for objective in objectives for seconds in sorted(lengths)
            for batch in sorted(batches) for precision in precisions]


def downstream_specs(model, tasks, precisions, common, checkpoint, combine):
    return [{**common, "part": "downstream", "model": model, "objective": mode, "task": name,
             "seconds": float(seconds), "batch": int(batch), "precision": precision,
             "checkpoint": checkpoint, "combine": combine}
            for name, batch, seconds in tasks for precision in precisions for mode in MODES]


def flops_key(spec):
    return (spec["part"], spec["objective"], spec["task"], spec["batch"], spec["seconds"])


def inferred_oom(spec, rows):
    """The OOM row that makes ``spec`` an OOM without running it, or None."""
    if spec["part"] != "pretrain":
        return None
    for row in rows:
        if (row["status"] == "OOM" and row["part"] == spec["part"]
                and row["objective"] == spec["objective"] and row["precision"] == spec["precision"]
                and row["batch"] <= spec["batch"] and row["seconds"] <= spec["seconds"]):
            return row
    return None


def cell_label(spec):
    what = f"{spec['objective']}" + (f" {spec['task']}" if spec["task"] else "")
    return f"{spec['part']} {spec['model']} {what} {spec['seconds']:g} s x {spec['batch']} " \
           f"{spec['precision']}"


def format_duration(seconds):
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def estimate_left(done, weights_left):
    """Seconds left: a least-squares line (seconds = a + b * weight) through
    the finished cells, weight = audio seconds x steps."""
    if not done or not weights_left:
        return 0.0 if not weights_left else None
    xs, ys = zip(*done)
    if len(set(xs)) < 2:
        per = sum(ys) / sum(xs) if sum(xs) else 0.0
        return per * sum(weights_left)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / \
        sum((x - mean_x) ** 2 for x in xs)
    slope = max(slope, 0.0)
    intercept = max(mean_y - slope * mean_x, 0.0)
    return sum(intercept + slope * w for w in weights_left)


def over_cpu_budget(result, device, budget_mib):
    """``"peak P MiB > B MiB"`` when a finished CPU cell's peak exceeds
    ``budget_mib`` (a smaller device's memory, ``--memory_gb``), else None.

    >>> over_cpu_budget({"status": "ok", "peak_mib": 900.0}, "cpu", 512)
    'peak 900 MiB > 512 MiB'
    >>> over_cpu_budget({"status": "ok", "peak_mib": 900.0}, "cpu", None) is None
    True
    """
    if (budget_mib and result.get("status") == "ok" and torch.device(device).type == "cpu"
            and result["peak_mib"] > budget_mib):
        return f"peak {result['peak_mib']:.0f} MiB > {budget_mib:.0f} MiB"
    return None


def sweep(specs, isolate=False, infer_oom=True, cpu_budget_mib=None, log=print, timeout=None):
    """Measure every cell of ``specs``; returns one row (spec + results) per
    cell. An OOM cell is recorded and the sweep goes on."""
    rows, done, counted = [], [], {}
    started = time.perf_counter()

    def weight(spec):
        return spec["batch"] * spec["seconds"] * (spec["warmup"] + spec["repeats"] + 1)

    for index, spec in enumerate(specs):
        spec = dict(spec)
        key = flops_key(spec)
        minimum = 2 if spec["part"] == "pretrain" and spec["objective"] == "noncontrastive" else 1
        cell_start = time.perf_counter()
        blocker = inferred_oom(spec, rows) if infer_oom else None
        if spec["batch"] < minimum:
            result = {"status": "n/a", "note": f"{spec['objective']} needs batch >= {minimum}"}
        elif blocker is not None:
            result = {"status": "OOM", "note": f"inferred: B={blocker['batch']} "
                      f"{blocker['seconds']:g} s ran out of memory"}
        else:
            spec["count_flops"] = key not in counted
            try:
                result = call("run_cell", {"spec": spec}, isolate, spec.get("threads"), timeout)
            except Exception as err:  # noqa: BLE001 - inline cells: as an isolated one reports it
                result = {"status": "error", "note": f"{type(err).__name__}: {err}"[:300]}
                free_memory(spec["device"])
            if result.get("flops") is not None:
                counted[key] = result["flops"]
            over = over_cpu_budget(result, spec["device"], cpu_budget_mib)
            if over:
                result["status"], result["note"] = "OOM", f"budget: {over}"
            done.append((weight(spec), time.perf_counter() - cell_start))
        row = {**spec, **result}
        rows.append(row)
        left = estimate_left(done, [weight(s) for s in specs[index + 1:]])
        if row["status"] == "ok":
            what = f"{row['s_per_batch']:.3f} s/batch, {row['peak_mib']:.0f} MiB peak"
        else:
            what = row["status"] + (f" ({row['note']})" if row.get("note") else "")
        log(f"[cell {index + 1}/{len(specs)}] {cell_label(spec)}: {what} | elapsed "
            f"{format_duration(time.perf_counter() - started)}, ~{format_duration(left)} left",
            flush=True)
    for row in rows:
        row["gflops"], row["flops_estimated"] = None, False
        key = flops_key(row)
        if key in counted:
            row["gflops"] = counted[key] / 1e9
        elif row["status"] not in ("n/a",):
            same = [(k[3], v) for k, v in counted.items() if k[:3] == key[:3] and k[4] == key[4]]
            if same:
                batch, flops = max(same)
                row["gflops"] = flops * row["batch"] / batch / 1e9
                row["flops_estimated"] = True
        row.pop("flops", None)
    return rows


def peak_tflops_for(device_name, precision, override=None):
    """The device's dense peak TFLOP/s for ``precision`` (``PEAK_TFLOPS``), or None."""
    if override:
        return float(override)
    for pattern, peaks in PEAK_TFLOPS:
        if pattern.lower() in (device_name or "").lower():
            if precision == "fp32":
                tf32 = torch.backends.cuda.matmul.allow_tf32 or \
                    torch.get_float32_matmul_precision() != "highest"
                return peaks["tf32"] if tf32 and peaks["tf32"] else peaks["fp32"]
            return peaks.get(precision)
    return None


def finish_rows(rows, device_name, peak_override=None):
    """Derived columns: audio s/s, achieved TFLOP/s, MFU."""
    for row in rows:
        row["device_name"] = device_name
        row["audio_s"] = row["batch"] * row["seconds"]
        row["torch"] = torch.__version__
        ok = row["status"] == "ok"
        row["audio_s_per_s"] = row["audio_s"] / row["s_per_batch"] if ok else None
        row["achieved_tflops"] = (row["gflops"] / 1e3 / row["s_per_batch"]
                                  if ok and row.get("gflops") else None)
        use_peak = row["device"].startswith("cuda") or peak_override
        row["peak_tflops"] = peak_tflops_for(device_name, row["precision"], peak_override) \
            if use_peak else None
        row["mfu"] = (row["achieved_tflops"] / row["peak_tflops"]
                      if row["achieved_tflops"] and row["peak_tflops"] else None)
    return rows


# ----------------------------------------------------------------------------- output

def write_csv(rows, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})
    return path


def fmt_value(row, metric):
    if row is None:
        return "-"
    if row["status"] != "ok" and metric != "gflops":
        return row["status"]
    value = row.get(metric)
    if value is None or value == "":
        return row["status"] if row["status"] != "ok" else "-"
    if metric == "s_per_batch":
        return f"{value:.3f}" if value < 10 else f"{value:.2f}"
    if metric in ("peak_mib", "step_mib"):
        return f"{value:.0f}"
    if metric == "gflops":
        text = f"{value:.1f}" if value < 1000 else f"{value:,.0f}"
        return text + ("*" if row.get("flops_estimated") else "")
    if metric == "mfu":
        return f"{100 * value:.1f}%"
    return f"{value:.2f}"


METRICS = [("s_per_batch", "training time (median seconds per batch)"),
           ("peak_mib", "peak memory (MiB)"),
           ("gflops", "GFLOPs per training step (forward + backward)"),
           ("audio_s_per_s", "audio seconds per second"),
           ("mfu", "model-FLOPs utilisation")]


def markdown_table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def table2(rows, objective, metric, device_label):
    """Paper 003 Table 2's layout: rows = length, columns = batch x precision."""
    cells = [r for r in rows if r["part"] == "pretrain" and r["objective"] == objective]
    lengths = sorted({r["seconds"] for r in cells})
    batches = sorted({r["batch"] for r in cells})
    precisions = [p for p in PRECISIONS if any(r["precision"] == p for r in cells)]
    index = {(r["seconds"], r["batch"], r["precision"]): r for r in cells}
    header = ["Device", "Length"] + [f"B={b} {p}" for b in batches for p in precisions]
    lines = [[device_label if i == 0 else "", f"{seconds:g}s"]
             + [fmt_value(index.get((seconds, b, p)), metric) for b in batches for p in precisions]
             for i, seconds in enumerate(lengths)]
    return markdown_table(header, lines)


def table3(rows, metric, device_label):
    """Paper 003 Table 3's layout: rows = task, columns = Froz. / Unfroz. per precision."""
    cells = [r for r in rows if r["part"] == "downstream"]
    tasks = list(dict.fromkeys((r["task"], r["batch"], r["seconds"]) for r in cells))
    precisions = [p for p in PRECISIONS if any(r["precision"] == p for r in cells)]
    index = {(r["task"], r["batch"], r["seconds"], r["precision"], r["objective"]): r for r in cells}
    header = ["Tasks", "B", "length"] + [f"{m} {p} ({device_label})" for p in precisions
                                         for m in ("Froz.", "Unfroz.")]
    lines = []
    for task in tasks:
        line = [task[0], task[1], f"{task[2]:g}s"]
        for p in precisions:
            for mode in MODES:
                line.append(fmt_value(index.get((*task, p, mode)), metric))
        lines.append(line)
    return markdown_table(header, lines)


def speedup_lines(rows):
    out = []
    cells = [r for r in rows if r["part"] == "downstream" and r["status"] == "ok"]
    index = {(r["task"], r["batch"], r["seconds"], r["precision"], r["objective"]): r for r in cells}
    for (task, batch, seconds, precision, mode), row in index.items():
        if mode != "frozen":
            continue
        other = index.get((task, batch, seconds, precision, "unfrozen"))
        if other:
            out.append(f"{task} ({precision}): unfrozen / frozen = "
                       f"{other['s_per_batch'] / row['s_per_batch']:.1f}x time, "
                       f"{other['peak_mib'] / max(row['peak_mib'], 1e-9):.1f}x memory")
    return out


def ratio_text(ratio):
    if not ratio:
        return []
    short, long = ratio["rows"][0], ratio["rows"][-1]
    lines = [f"FLOPs of one {ratio['model']} {ratio['objective']} pre-training step, batch "
             f"{ratio['batch']} ({ratio['device']}):"]
    for row in ratio["rows"]:
        parts = [f"{row['seconds']:g} s ({row['frames']} frames): {row['flops'] / 1e9:,.1f} GFLOPs"]
        parts.append(f"CNN {row['cnn'] / 1e9:,.2f}, rest {row['rest'] / 1e9:,.2f} "
                     "(transformer, heads; the target too if non-contrastive)")
        if row["attention"] is not None:
            parts.append(f"of which attention products {row['attention'] / 1e9:,.1f}")
        lines.append("  " + ", ".join(parts))
    value = long["flops"] / short["flops"]
    lines.append(f"  ratio {long['seconds']:g} s / {short['seconds']:g} s = {value:.1f}x "
                 f"(paper 003: approximately 15x); audio {long['seconds'] / short['seconds']:.1f}x, "
                 f"frames {long['frames'] / short['frames']:.1f}x")
    if short["cnn"] and short["rest"]:
        line = (f"  CNN {long['cnn'] / short['cnn']:.1f}x, rest "
                f"{long['rest'] / short['rest']:.1f}x")
        if short["attention"]:
            line += f", attention products {long['attention'] / short['attention']:.1f}x"
        lines.append(line)
    return lines


def write_markdown(path, rows, meta, ratio=None, figures=()):
    device_label = meta["device_label"]
    out = [f"# Resource cost of training: {meta['model']} on {meta['device_name']}", "",
           f"Command: `{meta['command']}`  ", f"Date: {meta['date']}; torch {torch.__version__}; "
           f"{meta['threads']} torch threads; warm-up {meta['warmup']}, repeats {meta['repeats']} "
           f"(median); memory: {meta['memory_note']}", ""]
    objectives = list(dict.fromkeys(r["objective"] for r in rows if r["part"] == "pretrain"))
    metrics = [(m, t) for m, t in METRICS
               if m != "mfu" or any(r.get("mfu") is not None for r in rows)]
    for objective in objectives:
        out += [f"## Pre-training ({objective}), paper 003 Table 2 layout", ""]
        for metric, title in metrics:
            out += [f"### {title}", "", table2(rows, objective, metric, device_label), ""]
    if any(r["part"] == "downstream" for r in rows):
        out += ["## Downstream training, paper 003 Table 3 layout", "",
                "Upstream = random backbone of the model's shape, weighted layer sum "
                f"(`{meta.get('combine', 'weighted')}`); head = MeanPoolClassifier "
                f"({HEAD_PROJECTION} -> {DOWNSTREAM_CLASSES}) for every row.", ""]
        for metric, title in metrics:
            out += [f"### {title}", "", table3(rows, metric, device_label), ""]
        speed = speedup_lines(rows)
        if speed:
            out += ["Frozen versus unfrozen:", ""] + [f"- {s}" for s in speed] + [""]
    if any(r.get("flops_estimated") for r in rows):
        out += ["`*` FLOPs scaled from a smaller batch at the same length (that cell ran out "
                "of memory).", ""]
    if ratio:
        out += ["## FLOPs, 15 s versus 1 s", "", "```"] + ratio_text(ratio) + ["```", ""]
    for figure in figures:
        out += [f"![{Path(figure).stem}]({Path(figure).name})", ""]
    Path(path).write_text("\n".join(out))
    return Path(path)


def memory_unit(values_mib):
    """("GiB", 1024) when the largest value reaches 2 GiB, else ("MiB", 1)."""
    return ("GiB", 1024.0) if max(values_mib, default=0) >= 2048 else ("MiB", 1.0)


def figure2(rows, path):
    """Memory and FLOPs against length, a line per batch (paper 003 Fig. 2)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [r for r in rows if r["part"] == "pretrain"]
    objectives = list(dict.fromkeys(r["objective"] for r in cells))
    if not objectives:
        return None
    styles = {"fp32": "-", "bf16": "--", "fp16": ":"}
    unit, scale = memory_unit([r["peak_mib"] for r in cells if r["status"] == "ok"])
    most = max((r["gflops"] for r in cells if r.get("gflops")), default=0)
    flop_unit, flop_scale = ("TFLOPs", 1e3) if most >= 1e3 else ("GFLOPs", 1.0)
    fig, axes = plt.subplots(len(objectives), 2, figsize=(10, 3.6 * len(objectives)), squeeze=False)
    for (ax_mem, ax_flops), objective in zip(axes, objectives):
        mine = [r for r in cells if r["objective"] == objective]
        batches = sorted({r["batch"] for r in mine})
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, batch in enumerate(batches):
            colour = colours[i % len(colours)]
            for precision in PRECISIONS:
                points = sorted((r["seconds"], r["peak_mib"] / scale) for r in mine
                                if r["batch"] == batch and r["precision"] == precision
                                and r["status"] == "ok")
                if points:
                    ax_mem.plot(*zip(*points), styles[precision], marker="o", color=colour,
                                label=f"B={batch} {precision}")
            flops = {}
            for r in mine:
                if r["batch"] == batch and r.get("gflops"):
                    flops[r["seconds"]] = r["gflops"] / flop_scale
            if flops:
                ax_flops.plot(*zip(*sorted(flops.items())), marker="o", color=colour,
                              label=f"B={batch}")
        ax_mem.set(xlabel="sequence length (s)", ylabel=f"peak memory ({unit})",
                   title=f"{objective}: memory")
        ax_flops.set(xlabel="sequence length (s)", ylabel=f"{flop_unit} per training step",
                     title=f"{objective}: FLOPs")
        for ax in (ax_mem, ax_flops):
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def figure3(timelines, path):
    """Memory over a short downstream run, frozen vs unfrozen (paper 003 Fig. 3)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(t["task"] for t in timelines))
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    unit, scale = memory_unit([m for t in timelines for m in t["mib"]])
    for ax, task in zip(axes[0], tasks):
        for line in (t for t in timelines if t["task"] == task):
            if not line["t"]:
                continue
            (handle,) = ax.plot(line["t"], [m / scale for m in line["mib"]],
                                label=f"{line['mode']} ({line['status']})")
            for end in line["step_ends"]:
                ax.axvline(end, color=handle.get_color(), alpha=0.15, lw=0.8)
        first = next(t for t in timelines if t["task"] == task)
        ax.set(xlabel="wall clock (s)", ylabel=f"memory above start ({unit})",
               title=f"{task}: {first['seconds']:g} s x {first['batch']}, fp32")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_timeline_csv(timelines, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "mode", "batch", "seconds", "t", "mib", "status"])
        for line in timelines:
            for t, mib in zip(line["t"], line["mib"]):
                writer.writerow([line["task"], line["mode"], line["batch"], line["seconds"],
                                 f"{t:.4f}", f"{mib:.2f}", line["status"]])
    return Path(path)


# ----------------------------------------------------------------------------- CLI

def resolve_threads(value):
    """``--threads``, else ``OMP_NUM_THREADS`` if set, else None (torch's default)."""
    if value:
        return int(value)
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def device_name(device):
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} CPUs)"


def memory_fraction_of(memory_gb, device):
    """The CUDA per-process memory fraction that leaves ``memory_gb`` GiB of
    ``device`` (a smaller device's size), or None (the CPU, or no size)."""
    if not memory_gb or torch.device(device).type != "cuda":
        return None
    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return min(1.0, float(memory_gb) * 2 ** 30 / total)


def memory_fraction_for(args, device):
    if args.memory_fraction:
        return float(args.memory_fraction)
    return memory_fraction_of(args.memory_gb, device)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_ext.analysis.resources",
        description="Seconds, memory and FLOPs of SSL training against length, batch and "
                    "precision (paper 003 section 5).")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--model", default="w2v2_base", help="a zoo model (w2v2_base, w2v2_micro, "
                        "sewd_tiny, ...; python -m speechbrain_ext.models lists them)")
    parser.add_argument("--objective", nargs="+", choices=OBJECTIVES, default=["contrastive"])
    parser.add_argument("--lengths", nargs="+", type=float, help="seconds (default 1 5 10 15)")
    parser.add_argument("--batches", nargs="+", type=int, help="default 2 4 8 16")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--downstream_tasks", nargs="+",
                        help="Table 3 rows (KWS SF ER SID/ASV ASR, default all) or NAME:BATCH:SECONDS")
    parser.add_argument("--combine", choices=("weighted", "auto", "last"), default="weighted",
                        help="Upstream features (default: the weighted layer sum, frozen and unfrozen)")
    parser.add_argument("--warmup", type=int, help="untimed steps per cell (default 1)")
    parser.add_argument("--repeats", type=int, help="timed steps per cell, median (default 3)")
    parser.add_argument("--timeline_tasks", nargs="+", help="Fig. 3 tasks (default KWS ER)")
    parser.add_argument("--timeline_steps", type=int, help="steps of each Fig. 3 run (default 10)")
    parser.add_argument("--sample_ms", type=float, default=5.0, help="memory sampling interval")
    parser.add_argument("--ratio_model", default="w2v2_base")
    parser.add_argument("--ratio_objective", choices=OBJECTIVES, default="contrastive")
    parser.add_argument("--ratio_lengths", nargs=2, type=float, default=[1.0, 15.0])
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: OMP_NUM_THREADS)")
    parser.add_argument("--isolate", choices=("auto", "process", "none"), default="auto",
                        help="a fresh process per cell (auto: on the CPU) or all in this one")
    parser.add_argument("--memory_fraction", type=float, help="CUDA per-process memory fraction")
    parser.add_argument("--memory_gb", type=float,
                        help="emulate a device of this many GiB (CUDA: the memory fraction; "
                             "CPU: cells whose peak exceeds it are marked OOM)")
    parser.add_argument("--peak_tflops", type=float, help="device peak for the MFU column")
    parser.add_argument("--no_infer_oom", action="store_true",
                        help="run cells larger than an OOM cell instead of marking them OOM")
    parser.add_argument("--cell_timeout", type=float, default=3600.0, help="seconds (isolated)")
    parser.add_argument("--layerdrop", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny sweep (1-2 s, batch 2-4, 2 repeats, 2 small downstream rows)")
    parser.add_argument("--no_figures", action="store_true")
    parser.add_argument("--out", default="results/resources")
    parser.add_argument("--tag", help="output file prefix (default <model>_<device>)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    defaults = QUICK if args.quick else DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, list(value) if isinstance(value, list) else value)
    threads = resolve_threads(args.threads)
    if threads:
        torch.set_num_threads(threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = torch.device(device).type
    isolate = kind == "cpu" if args.isolate == "auto" else args.isolate == "process"
    name = device_name(device)
    label = "CPU" if kind == "cpu" else name
    fraction = memory_fraction_for(args, device)
    cpu_budget = args.memory_gb * 1024 if args.memory_gb and kind == "cpu" else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or f"{args.model}_{kind}"
    common = {"device": device, "warmup": args.warmup, "repeats": args.repeats,
              "layerdrop": args.layerdrop, "seed": args.seed, "memory_fraction": fraction,
              "sample_ms": args.sample_ms, "threads": threads}
    memory_note = ("CUDA max_memory_allocated per cell" if kind == "cuda" else
                   "peak RSS rise per cell (VmHWM after a clear_refs reset, "
                   + ("a fresh forked process per cell)" if isolate else "cells share a process)"))
    if fraction:
        memory_note += f"; memory fraction {fraction:.3f}"
    if cpu_budget:
        memory_note += f"; cells above {args.memory_gb:g} GiB marked OOM (budget)"
    print(f"device {name}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"isolate {isolate}; out {out}/{tag}*", flush=True)
    tasks = [parse_task(t) for t in args.downstream_tasks]
    rows, timelines, ratio, figures = [], [], None, []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if "downstream" in args.parts or "timeline" in args.parts:
            checkpoint = make_checkpoint(args.model, folder, args.layerdrop, args.seed)
        specs = []
        if "pretrain" in args.parts:
            specs += pretrain_specs(args.model, args.objective, args.lengths, args.batches,
                                    args.precisions, common)
        if "downstream" in args.parts:
            specs += downstream_specs(args.model, tasks, args.precisions, common, checkpoint,
                                      args.combine)
        if specs:
            rows = sweep(specs, isolate, not args.no_infer_oom, cpu_budget,
                         timeout=args.cell_timeout)
            finish_rows(rows, name, args.peak_tflops)
        if "timeline" in args.parts:
            known = {t[0]: t for t in tasks}
            for task in args.timeline_tasks:
                task_name, batch, seconds = known.get(task) or parse_task(task)
                for mode in MODES:
                    spec = {**common, "part": "downstream", "model": args.model, "objective": mode,
                            "task": task_name, "batch": batch, "seconds": seconds,
                            "precision": "fp32", "checkpoint": checkpoint,
                            "combine": args.combine}
                    line = call("run_timeline", {"spec": spec, "steps": args.timeline_steps},
                                isolate, threads, args.cell_timeout)
                    line.setdefault("t", [])
                    line.setdefault("mib", [])
                    line.setdefault("step_ends", [])
                    line.update(task=task_name, mode=mode, batch=batch, seconds=seconds)
                    timelines.append(line)
                    peak = max(line["mib"]) if line["mib"] else float("nan")
                    print(f"[timeline] {task_name} {mode} {seconds:g} s x {batch}: "
                          f"{args.timeline_steps} steps, peak {peak:.0f} MiB "
                          f"({line['status']})", flush=True)
    if "ratio" in args.parts:
        print(f"[ratio] counting FLOPs of {args.ratio_model} {args.ratio_objective} at "
              f"{args.ratio_lengths[0]:g} s and {args.ratio_lengths[1]:g} s, batch 1 ...", flush=True)
        ratio_rows = call("run_ratio", {"model": args.ratio_model, "objective": args.ratio_objective,
                                        "lengths": list(args.ratio_lengths), "batch": 1,
                                        "device": device, "layerdrop": args.layerdrop,
                                        "seed": args.seed}, isolate, threads, args.cell_timeout)
        if isinstance(ratio_rows, dict):
            print(f"[ratio] failed: {ratio_rows}")
        else:
            ratio = {"model": args.ratio_model, "objective": args.ratio_objective, "batch": 1,
                     "device": device, "rows": ratio_rows}
    pre = [r for r in rows if r["part"] == "pretrain"]
    down = [r for r in rows if r["part"] == "downstream"]
    if pre:
        print(f"wrote {write_csv(pre, out / f'{tag}_pretrain.csv')}")
    if down:
        print(f"wrote {write_csv(down, out / f'{tag}_downstream.csv')}")
    if timelines:
        print(f"wrote {write_timeline_csv(timelines, out / f'{tag}_timeline.csv')}")
    if not args.no_figures:
        if pre:
            figures.append(figure2(pre, out / f"{tag}_fig2.png"))
        if timelines:
            figures.append(figure3(timelines, out / f"{tag}_fig3.png"))
        figures = [f for f in figures if f]
    meta = {"model": args.model, "device_name": name, "device_label": label,
            "command": "python -m speechbrain_ext.analysis.resources " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "threads": torch.get_num_threads(), "warmup": args.warmup, "repeats": args.repeats,
            "memory_note": memory_note, "combine": args.combine}
    if rows or ratio:
        md = write_markdown(out / f"{tag}.md", rows, meta, ratio, figures)
        print(f"wrote {md}")
    for objective in dict.fromkeys(r["objective"] for r in pre):
        for metric, title in METRICS[:3]:
            print(f"\n{objective}: {title}\n{table2(rows, objective, metric, label)}")
    if down:
        for metric, title in METRICS[:2]:
            print(f"\ndownstream: {title}\n{table3(rows, metric, label)}")
        for line in speedup_lines(rows):
            print(line)
    if ratio:
        print()
        print("\n".join(ratio_text(ratio)))
    return 0


if __name__ == "__main__":
    # run the functions from the module's importable name, so that the
    # forkserver's children (which import it by that name) find them
    from speechbrain_ext.analysis import resources as _resources

    sys.exit(_resources.main())
