"""Training-step throughput of the pre-training objectives on this machine,
against the bare backbone, HF transformers' Wav2Vec2ForPreTraining and
SpeechBrain 1.1's own wav2vec2 pre-training lobes.

    python benchmarks/pretrain_throughput.py --quick                  # smoke run, < 1 min
    python benchmarks/pretrain_throughput.py                          # tiny, 8 x 5 s
    python benchmarks/pretrain_throughput.py --size base --batch 2 --steps 1
    python benchmarks/pretrain_throughput.py --size micro --compare 16d2748 --syncs
    python benchmarks/pretrain_throughput.py --device cuda --size base --batch 8 --seconds 15

Sizes: micro (0.2 M) and tiny (wav2vec2-tiny of the SEW paper, 11 M) for
CPUs; base is the paper-size model (wav2vec2-base, 95 M), whose step takes
about 10 s per 2 x 5 s batch on one core of these CPUs, HF's and
SpeechBrain's longer. Cost on 2 shared cores: --quick about 15 s; micro at
8 x 5 s without memory probes about 2 minutes; every run prints an estimate
of its timing after the warm-up steps and the time left on every line.
16d2748 is the commit before issue 19's step changes (--compare's "before").

Every variant is a full training step (forward, backward, Adam step; for the
non-contrastive model also the EMA update of the target), on the SAME random
batch, all models built from the same backbone architecture:

  (a) backbone  bare Wav2Vec2Backbone, loss last_hidden_state.pow(2).mean(),
                no time masking (the reference)
  (b) contrast  Wav2Vec2ContrastiveModel (span mask, quantizer and 100
                negatives for the masked frames only, fairseq loss); mask and
                negatives drawn inside the timed step
  (b') contrast_pre  the same model with mask and negatives drawn before the
                timed step (Wav2Vec2ContrastiveModel.draw_masks: what a data
                loader worker would do; the draw's time is printed apart)
  (b-) contrast_old  --compare REV only: the Wav2Vec2ContrastiveModel of git
                revision REV (speechbrain_ext/pretraining/{contrastive,
                wav2vec2}.py as committed there), same weights: the "before"
                of a speed change, timed in the same process as (b); one step
                of each from the same random state is checked to give the
                same loss and gradients
  (bc) contrast_compiled  --compile only: (b) with compile_backbone=True
                (torch.compile of the transformer; compile time excluded,
                it happens in the warm-up)
  (c) noncontr  NonContrastiveModel (online + no-grad target view, Barlow
                losses, EMA update)
  (d) hf        transformers Wav2Vec2ForPreTraining, same architecture, with
                mask / negatives from its _compute_mask_indices /
                _sample_negative_indices (computed inside the timed step,
                as (b) draws its own)
  (e) sb        SpeechBrain 1.1's lobes as its LibriSpeech wav2vec2 recipe
                (train_sb_wav2vec2.py) puts them together: W2VLatentExtractor,
                EncoderWrapper around speechbrain's TransformerEncoder,
                W2VTargetQuantiser, a feat_proj Linear, sample_negatives and
                ContrastiveLoss, backprop loss = summed contrastive loss +
                0.1 * diversity * masked frames (the recipe's
                compute_objectives). Its mask comes from w2v_mask_collate_fn,
                drawn before the timed step (the recipe draws it in the data
                loader's collate_fn). Built to the same size (CNN channels,
                kernels and strides, width, depth, heads, FFN, dropout 0.1,
                quantizer G=2 x V=320, final dim, K=100); where the lobes
                differ: a LayerNorm in every CNN block (ours: one GroupNorm
                after the first, wav2vec2-base), a fixed sinusoidal positional
                encoding (ours: the 128-wide grouped positional conv), its
                quantizer's codebook product as a broadcast multiply-sum and
                targets through W2VTargetQuantiser's extra Linear, negatives
                gathered as [K, B, T, C] vectors, the same number of masked
                frames in every utterance, no feature penalty. (Its mask
                needs clips of 2 s or more: on 1 s, w2v_mask_collate_fn can
                ask for more masked frames than the clip has and fails.)

(a)-(e) run in every --precision: fp32 and under torch.autocast(<device>,
dtype=torch.bfloat16) (weights stay fp32).

Timing: all models live in one process; each repeat runs ``--steps`` steps of
every variant in turn (variants interleaved, their order rotated each repeat)
after one untimed warm-up step each. Progress lines give each step's time and
an estimate of the time left. Step times are medians over repeats; ratios are
"paired": the median over repeats of the ratio within each repeat, so that a
slow phase of a shared machine hits both sides of a ratio alike ("best", the
ratio of the fastest steps, is printed too). The CPU time other processes
used during the timing is printed: on a busy machine, small multi-threaded
ops wait for a core (each costs milliseconds instead of microseconds), which
slows every variant and penalises those with many small ops; compare runs
taken on a quiet machine. Threads: --threads, else OMP_NUM_THREADS, else the
CPUs this process may use. On CUDA each step ends with a synchronisation.

Memory: ``peak RSS +`` is how far the resident set size of the process rises
above its level before the first step during two training steps (the first
one allocates Adam's state), measured in a fresh subprocess per variant:
Linux ``/proc/self/status`` VmHWM (peak RSS) after the steps, minus VmRSS
just before them, with the peak reset to the current RSS first
(``/proc/self/clear_refs`` = 5). It covers activations kept for backward,
gradients, Adam state and the step's temporaries, not weights, imports or
the interpreter; ``peak RSS`` is the subprocess's absolute peak. (tracemalloc
does not see torch's allocations; ``ru_maxrss`` survives exec, so it would
report the parent's peak.) On CUDA: torch.cuda.max_memory_allocated over the
same two steps, in this process.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from speechbrain_ext.analysis.resources import cpu_model, resolve_threads  # noqa: E402
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config  # noqa: E402
from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel  # noqa: E402
from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel  # noqa: E402

SAMPLE_RATE = 16000
MODELS = ("backbone", "contrast", "contrast_pre", "contrast_old", "contrast_compiled",
          "noncontr", "sb", "hf")
LABELS = {"backbone": "(a) backbone", "contrast": "(b) contrastive",
          "contrast_pre": "(b') contr., pre-drawn", "contrast_old": "(b-) contr. @REV",
          "contrast_compiled": "(bc) contr., compiled", "noncontr": "(c) non-contrastive",
          "sb": "(e) SpeechBrain lobes", "hf": "(d) HF ForPreTraining"}
CONTRASTIVE = ("contrast", "contrast_pre", "contrast_old", "contrast_compiled")

# Contrastive heads per size: (codevector_dim, final_dim); G=2, V=320, K=100 always.
HEADS = {"micro": (64, 64), "tiny": (256, 256), "base": (256, 256)}
QUICK = {"size": "micro", "batch": 2, "seconds": 2.0, "repeats": 2}
# files whose committed version --compare REV loads as the "before" (order: dependencies first)
LEGACY_FILES = ("contrastive", "wav2vec2")


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


def legacy_contrastive_class(rev):
    """``Wav2Vec2ContrastiveModel`` as committed at git revision ``rev``
    (its ``contrastive.py`` / ``wav2vec2.py`` loaded under private module
    names; the rest of the package is today's)."""
    modules = {}
    for name in LEGACY_FILES:
        path = f"speechbrain_ext/pretraining/{name}.py"
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], check=True,
                              capture_output=True, text=True).stdout
        for other in modules:
            text = text.replace(f"speechbrain_ext.pretraining.{other}", f"_legacy_{other}")
        module = types.ModuleType(f"_legacy_{name}")
        module.__file__ = f"{rev}:{path}"
        sys.modules[module.__name__] = module
        exec(compile(text, module.__file__, "exec"), module.__dict__)  # noqa: S102 (our own repo)
        modules[name] = module
    return modules["wav2vec2"].Wav2Vec2ContrastiveModel


class SpeechBrainWav2Vec2(nn.Module):
    """SpeechBrain 1.1's wav2vec2 pre-training lobes at the size of ``cfg``
    (see (e) in the module docstring for where they differ from ours)."""

    def __init__(self, cfg, final_dim, num_negatives=100, diversity_weight=0.1):
        super().__init__()
        from speechbrain.lobes.models.transformer.Transformer import TransformerEncoder
        from speechbrain.lobes.models.wav2vec import (EncoderWrapper, W2VLatentExtractor,
                                                      W2VTargetQuantiser)
        from speechbrain.nnet.losses import ContrastiveLoss

        channels = [c for c, _, _ in cfg.conv_layers]
        self.latent_extractor = W2VLatentExtractor(
            out_channels=channels, kernel_sizes=[k for _, k, _ in cfg.conv_layers],
            strides=[s for _, _, s in cfg.conv_layers])
        encoder = TransformerEncoder(num_layers=cfg.num_layers, nhead=cfg.num_heads,
                                     d_ffn=cfg.ffn_dim, d_model=cfg.dim, dropout=cfg.dropout,
                                     activation=nn.GELU, normalize_before=cfg.layer_norm_first,
                                     layerdrop_prob=cfg.layerdrop)
        self.latent_encoder = EncoderWrapper(channels[-1], cfg.dim, encoder,
                                             dropout_encoder_input=0.1)
        self.target_quantiser = W2VTargetQuantiser(in_dim=channels[-1], out_dim=final_dim,
                                                   num_vars=320,
                                                   temperature_decay=(2.0, 0.5, 0.999995))
        self.feat_proj = nn.Linear(cfg.dim, final_dim)
        self.loss_fn = ContrastiveLoss(logit_temp=0.1)
        self.num_negatives = num_negatives
        self.diversity_weight = diversity_weight

    def draw_mask(self, wav):
        """``[B, T]`` bool mask from ``w2v_mask_collate_fn`` (as the recipe's collate_fn)."""
        from speechbrain.lobes.models.wav2vec import w2v_mask_collate_fn

        samples = [{"id": str(i), "sig": w} for i, w in enumerate(wav.cpu())]
        _, _, mask = w2v_mask_collate_fn(samples, self.latent_extractor.get_output_lengths,
                                         0.65, 10)
        return mask.to(wav.device)

    def forward(self, wav, mask):
        """The recipe's compute_forward + compute_objectives; ``wav`` ``[B, S]``."""
        from speechbrain.lobes.models.wav2vec import sample_negatives as sb_sample_negatives

        batch = wav.shape[0]
        latents = self.latent_extractor(wav, normalize_signal=False)  # [B, T, C]
        results = self.latent_encoder(latents, mask=mask)
        embeddings = self.feat_proj(results["embeddings"][mask]).view(batch, -1, self.feat_proj.out_features)
        targets, meta = self.target_quantiser(latents[mask].view(batch, -1, latents.shape[2]))
        negatives = sb_sample_negatives(targets, self.num_negatives)
        loss, _ = self.loss_fn(embeddings, targets, negatives)
        return loss + meta["diversity_loss"] * self.diversity_weight * results["num_masked"]


class Runner:
    """One model + Adam; ``step(wav, precision, prepared)`` is one full
    training step, ``prepare(wav)`` what is drawn before it (or None)."""

    def __init__(self, kind, cfg, size, seed, device="cpu", legacy_rev=None):
        self.kind = kind
        self.device = torch.device(device)
        codevector_dim, final_dim = HEADS[size]
        torch.manual_seed(seed)  # same backbone initialisation for (a)-(c)
        backbone = Wav2Vec2Backbone(cfg)
        if kind == "backbone":
            self.model = backbone
        elif kind in CONTRASTIVE:
            model_class = legacy_contrastive_class(legacy_rev) if kind == "contrast_old" \
                else Wav2Vec2ContrastiveModel
            extra = {"compile_backbone": True} if kind == "contrast_compiled" else {}
            self.model = model_class(backbone=backbone, codevector_dim=codevector_dim,
                                     final_dim=final_dim, num_negatives=100, **extra)
        elif kind == "noncontr":
            self.model = NonContrastiveModel(backbone=backbone)
        elif kind == "sb":
            self.model = SpeechBrainWav2Vec2(cfg, final_dim)
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
        self.model.to(self.device).train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.num_params = sum(p.numel() for p in params)
        self.optimizer = torch.optim.Adam(params, lr=1e-5)
        self.updates = 0

    def prepare(self, wav):
        """What a data loader worker would draw: (b')'s mask and negatives,
        (e)'s collate_fn mask; None for the others (they draw in the step)."""
        if self.kind == "contrast_pre":
            samples = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
            return self.model.draw_masks(samples)
        if self.kind == "sb":
            return self.model.draw_mask(wav)
        return None

    def loss(self, wav, prepared=None):
        if self.kind == "backbone":
            return self.model(wav).last_hidden_state.float().pow(2).mean()
        if self.kind == "contrast_pre":
            time_mask, negative_index = prepared
            return self.model(wav, time_mask=time_mask.to(wav.device),
                              negative_index=negative_index.to(wav.device))["loss"]
        if self.kind in CONTRASTIVE or self.kind == "noncontr":
            return self.model(wav)["loss"]
        if self.kind == "sb":
            return self.model(wav, prepared)
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
        mask = torch.tensor(mask, dtype=torch.long, device=wav.device)
        negatives = torch.tensor(negatives, dtype=torch.long, device=wav.device)
        return self.model(wav, mask_time_indices=mask, sampled_negative_indices=negatives).loss

    def step(self, wav, precision, prepared=None):
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=(precision == "bf16")):
            loss = self.loss(wav, prepared)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        if hasattr(self.model, "after_optimizer_step"):
            self.model.after_optimizer_step(self.updates)
        value = float(loss.detach())  # the one host synchronisation of the step (as at logging)
        if value != value:
            raise FloatingPointError(f"{self.kind}: NaN loss")
        return value


def same_step(a, b, wav, precision, seed=1234):
    """One step of runners ``a`` and ``b`` (same weights) from the same
    random state: (largest loss difference, largest gradient difference)."""
    grads = []
    losses = []
    for runner in (a, b):
        torch.manual_seed(seed)
        runner.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(runner.device.type, dtype=torch.bfloat16,
                            enabled=(precision == "bf16")):
            loss = runner.loss(wav)
        loss.backward()
        losses.append(loss.detach().float())
        grads.append({n: p.grad.detach().clone() for n, p in runner.model.named_parameters()
                      if p.grad is not None})
        runner.optimizer.zero_grad(set_to_none=True)
    if grads[0].keys() != grads[1].keys():
        return float("inf"), float("inf")
    grad_diff = max((grads[0][n] - grads[1][n]).abs().max().item() for n in grads[0])
    return (losses[0] - losses[1]).abs().item(), grad_diff


def count_syncs(runner, wav, precision):
    """Host synchronisation points of one forward + backward (no optimizer:
    Adam's step counters are host tensors): ``aten::_local_scalar_dense``
    (``.item()``, ``bool()``, ``int()`` of a tensor) and ``aten::nonzero``
    (boolean-mask indexing, ``nonzero``), counted with torch.profiler on any
    device; on CUDA each one waits for the GPU."""
    from torch.profiler import ProfilerActivity, profile

    prepared = runner.prepare(wav)
    runner.optimizer.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with torch.autocast(runner.device.type, dtype=torch.bfloat16,
                            enabled=(precision == "bf16")):
            loss = runner.loss(wav, prepared)
        loss.backward()
    runner.optimizer.zero_grad(set_to_none=True)
    names = [e.name for e in prof.events()]
    return {"item": names.count("aten::_local_scalar_dense"), "nonzero": names.count("aten::nonzero")}


def make_batch(batch, seconds, seed):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(seconds * SAMPLE_RATE), generator=g)


def variants(precisions, extra=()):
    """(model, precision) pairs in timing order; ``extra``: optional kinds."""
    kinds = ["backbone", "contrast", "contrast_pre"] + \
        [k for k in ("contrast_old", "contrast_compiled") if k in extra] + ["noncontr", "sb", "hf"]
    return [(k, p) for k in kinds for p in precisions]


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
    runner = Runner(kind, cfg, args.size, args.seed, legacy_rev=args.compare)
    wav = make_batch(args.batch, args.seconds, args.seed)
    reset = reset_peak_rss()
    before = proc_status_kib("VmRSS")
    for _ in range(2):
        runner.step(wav, precision, runner.prepare(wav))
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
    if args.compare:
        command += ["--compare", args.compare]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def cuda_memory(runner, wav, precision):
    """Peak CUDA memory (allocated) over two steps, above the level before them."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        runner.step(wav, precision, runner.prepare(wav))
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    return {"delta_mib": (peak - before) / 2**20, "peak_mib": peak / 2**20, "reset": True}


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


def clock(seconds):
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("micro", "tiny", "base"), default=None,
                        help="backbone architecture (default tiny; --quick: micro)")
    parser.add_argument("--batch", type=int, default=None,
                        help="utterances per batch (default 8, 2 for base; --quick: 2)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per utterance (default 5; --quick: 2)")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per variant per repeat")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved rounds, medians over them (default 5; --quick: 2)")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"),
                        default=["fp32", "bf16"], help="precisions of every variant")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None,
                        help="variants to run (default all but contrast_old / contrast_compiled, "
                             "which --compare / --compile add)")
    parser.add_argument("--compare", metavar="REV", default=None,
                        help="add (b-): the contrastive model of git revision REV (e.g. HEAD, or "
                             "the commit before a speed change), timed beside (b), with a check "
                             "that both give the same loss and gradients")
    parser.add_argument("--compile", action="store_true",
                        help="add (bc): (b) with compile_backbone=True (slow first step)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: OMP_NUM_THREADS, else the usable CPUs)")
    parser.add_argument("--layerdrop", type=float, default=0.0,
                        help="layerdrop of all models (0: every step does the same work)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in about a minute: micro, 2 x 2 s, 2 repeats, "
                             "no memory probes (explicit options still win)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--no-hf", action="store_true", help="skip (d)")
    parser.add_argument("--no-sb", action="store_true", help="skip (e)")
    parser.add_argument("--syncs", action="store_true",
                        help="count the host synchronisation points of each variant's step "
                             "(one profiled forward + backward each)")
    parser.add_argument("--json", metavar="PATH", help="also write the step times and ratios here")
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "PRECISION"),
                        help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
        args.no_memory = True
    args.size = args.size or "tiny"
    args.seconds = args.seconds if args.seconds is not None else 5.0
    args.repeats = args.repeats if args.repeats is not None else 5
    if args.batch is None:
        args.batch = 2 if args.size == "base" else 8
    if args.threads is None:
        args.threads = resolve_threads(None) or num_threads()
    if args.memory_probe:
        return memory_probe(args)
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    torch.set_num_threads(args.threads)
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
        args.no_hf = True
    try:
        import speechbrain
        sb_version = speechbrain.__version__
    except ImportError:
        sb_version = None
        args.no_sb = True
    where = torch.cuda.get_device_name(device) if cuda else f"{cpu_model()} ({cpu_flags()})"
    print(f"machine : {where}, {num_threads()} usable CPUs, torch threads "
          f"{torch.get_num_threads()}", flush=True)
    print(f"software: python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {hf_version}, speechbrain {sb_version}", flush=True)

    cfg = backbone_config(args.size, args.layerdrop)
    wav = make_batch(args.batch, args.seconds, args.seed).to(device)
    audio = args.batch * args.seconds
    extra = (["contrast_old"] if args.compare else []) + (["contrast_compiled"] if args.compile else [])
    todo = variants(args.precision, extra)
    if args.models:  # --compare / --compile compare with (b): it always runs with them
        keep = set(args.models) | set(extra) | ({"contrast"} if extra else set())
        todo = [v for v in todo if v[0] in keep]
    todo = [v for v in todo if not (args.no_hf and v[0] == "hf") and not (args.no_sb and v[0] == "sb")]
    runners = {}
    for kind in dict.fromkeys(k for k, _ in todo):
        t0 = time.perf_counter()
        runners[kind] = Runner(kind, cfg, args.size, args.seed, device, args.compare)
        print(f"  built {LABELS[kind]} ({runners[kind].num_params / 1e6:.2f} M trainable) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    frames = cfg_frames(cfg, wav.shape[1])
    print(f"model   : {args.size} (conv {cfg.conv_layers[0][0]}x{len(cfg.conv_layers)}, d{cfg.dim}, "
          f"L{cfg.num_layers}, heads {cfg.num_heads}, ffn {cfg.ffn_dim}, layerdrop {cfg.layerdrop})")
    print(f"batch   : {args.batch} x {args.seconds:g} s = {audio:g} s of audio, {frames} frames "
          f"per utterance; {args.steps} timed step(s) x {args.repeats} interleaved repeats per "
          f"variant (+1 warm-up step), Adam; {len(todo)} variants", flush=True)

    checks = {}
    if args.compare:
        for p in args.precision:
            checks[p] = same_step(runners["contrast"], runners["contrast_old"], wav, p)
            print(f"  same step check ({p}): (b) vs (b-) @{args.compare}: loss differs by "
                  f"{checks[p][0]:.3g}, gradients by at most {checks[p][1]:.3g}", flush=True)

    warm = {}
    for i, (kind, precision) in enumerate(todo):  # warm-up (Adam state, autocast caches, allocator)
        t0 = time.perf_counter()
        runners[kind].step(wav, precision, runners[kind].prepare(wav))
        warm[(kind, precision)] = time.perf_counter() - t0
        print(f"  warm-up {i + 1}/{len(todo)} {kind:>17} {precision}: "
              f"{warm[(kind, precision)]:.2f} s", flush=True)
    print(f"timing: about {clock(args.repeats * args.steps * sum(warm.values()))} "
          "(from the warm-up steps, usually an upper bound)", flush=True)
    times = {v: [] for v in todo}
    cpu_times = {v: [] for v in todo}
    prepare_times = {v: [] for v in todo}
    total_runs = args.repeats * len(todo)
    wall0, busy0, own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    for repeat in range(args.repeats):
        shift = repeat % len(todo)
        for v in todo[shift:] + todo[:shift]:
            runner = runners[v[0]]
            elapsed_steps = cpu_steps = 0.0
            for _ in range(args.steps):
                t0 = time.perf_counter()
                prepared = runner.prepare(wav)
                if cuda:
                    torch.cuda.synchronize()
                start, cpu_start = time.perf_counter(), time.process_time()
                runner.step(wav, v[1], prepared)
                if cuda:
                    torch.cuda.synchronize()
                elapsed_steps += time.perf_counter() - start
                cpu_steps += time.process_time() - cpu_start
                prepare_times[v].append(start - t0)
            times[v].append(elapsed_steps / args.steps)
            cpu_times[v].append(cpu_steps / args.steps)
            done = sum(len(t) for t in times.values())
            spent = time.perf_counter() - wall0
            print(f"  [{done}/{total_runs}] repeat {repeat + 1}/{args.repeats} {v[0]:>17} {v[1]}: "
                  f"{1000 * times[v][-1]:8.1f} ms/step; left about {clock(spent / done * (total_runs - done))}",
                  flush=True)
    wall = time.perf_counter() - wall0
    busy1 = busy_cpu_seconds()
    others = None if busy0 is None or cuda else \
        max(0.0, (busy1 - busy0) - (own_cpu_seconds() - own0)) / wall
    step = {v: statistics.median(t) for v, t in times.items()}

    memory = {}
    if not args.no_memory:
        for i, v in enumerate(todo):
            t0 = time.perf_counter()
            memory[v] = cuda_memory(runners[v[0]], wav, v[1]) if cuda else measure_memory(args, *v)
            took = time.perf_counter() - t0
            peak = "failed" if memory[v] is None else f"{memory[v]['delta_mib']:.0f} MiB"
            print(f"  memory {i + 1}/{len(todo)} {v[0]:>17} {v[1]}: {peak} ({took:.0f} s; "
                  f"left about {clock(took * (len(todo) - i - 1))})", flush=True)
    syncs = {}
    if args.syncs:
        for v in todo:
            syncs[v] = count_syncs(runners[v[0]], wav, v[1])
    del runners

    print()
    if others is not None:
        print(f"other processes kept {others:.2f} of {os.cpu_count()} CPUs busy on average "
              f"during the {wall:.0f} s of timing (0 = quiet machine)")
    header = (f"{'variant':<26}{'prec':<6}{'audio s/s':>10}{'ms/step':>10}{'min ms':>9}"
              f"{'max ms':>9}{'CPU ms':>9}{'peak mem +':>12}{'peak mem':>10}")
    print(header)
    print("-" * len(header))
    for v in todo:
        t = times[v]
        mem = memory.get(v)
        mem_text = (f"{mem['delta_mib']:>8.0f} MiB{mem['peak_mib']:>6.0f} MiB" if mem
                    else f"{'n/a':>12}{'n/a':>10}")
        print(f"{LABELS[v[0]]:<26}{v[1]:<6}{audio / step[v]:>10.2f}{1000 * step[v]:>10.1f}"
              f"{1000 * min(t):>9.0f}{1000 * max(t):>9.0f}"
              f"{1000 * statistics.median(cpu_times[v]):>9.0f}{mem_text}")
    print("-" * len(header))
    for v in todo:
        if v[0] in ("contrast_pre", "sb"):
            print(f"{LABELS[v[0]]} {v[1]}: the draw before the step (not in ms/step) took "
                  f"{1000 * statistics.median(prepare_times[v]):.1f} ms (median)")
    for v in syncs:
        print(f"{LABELS[v[0]]} {v[1]}: host synchronisations in forward + backward: "
              f"{syncs[v]['item']} .item()/bool()/int(), {syncs[v]['nonzero']} nonzero "
              "(+1 per step: the loss read after it)")
    print("audio s/s and ms/step: median over the repeats (wall clock). CPU ms: median CPU "
          "time of this process per step, all threads\n(a measure of work, less sensitive to "
          "other processes; with >1 thread it includes threads spinning at barriers).")
    print("peak mem + = rise of the peak resident set (CUDA: allocated memory) over 2 training "
          "steps\nabove the level before them (CPU: fresh subprocess per variant; model, "
          "optimizer and batch already built); peak mem = the absolute peak.")

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
        rows += [
            (f"(b)/(a) contrastive / backbone, {p}", ratios(("contrast", p), ("backbone", p)), 0.9),
            (f"(b')/(a) pre-drawn / backbone, {p}", ratios(("contrast_pre", p), ("backbone", p)), 0.9),
            (f"(b)/(b-) this code / @{args.compare}, {p}",
             ratios(("contrast", p), ("contrast_old", p)), None),
            (f"(b')/(b) pre-drawn / in-step draws, {p}",
             ratios(("contrast_pre", p), ("contrast", p)), None),
            (f"(bc)/(b) compiled / eager, {p}", ratios(("contrast_compiled", p), ("contrast", p)), None),
            (f"(c)/(a) non-contrastive / backbone, {p}", ratios(("noncontr", p), ("backbone", p)), None),
            (f"(b)/(d) contrastive / HF ForPreTraining, {p}", ratios(("contrast", p), ("hf", p)), 2.0),
            (f"(b)/(e) contrastive / SpeechBrain lobes, {p}", ratios(("contrast", p), ("sb", p)), 1.0),
            (f"(b')/(e) pre-drawn / SpeechBrain lobes, {p}", ratios(("contrast_pre", p), ("sb", p)), 1.0),
        ]
    if "fp32" in args.precision and "bf16" in args.precision:
        for kind in dict.fromkeys(k for k, _ in todo):
            rows.append((f"bf16 / fp32, {LABELS[kind]}", ratios((kind, "bf16"), (kind, "fp32")),
                         1.5 if kind == "contrast" else None))
    print(f"  {'':<52}{'paired':>8}{'best':>8}{'CPU':>8}")
    results = []
    for name, value, target in rows:
        if value is None:
            continue
        verdict = "" if target is None else (
            f"  target >= {target:g}: {'MET' if value[0] >= target else 'NOT met'}")
        print(f"  {name:<52}{value[0]:7.2f}x{value[1]:7.2f}x{value[2]:7.2f}x{verdict}")
        results.append({"ratio": name, "paired": value[0], "best": value[1], "cpu": value[2],
                        "target": target})
    if args.json:
        record = {"argv": sys.argv[1:] if argv is None else list(argv), "machine": where,
                  "torch": torch.__version__, "size": args.size, "batch": args.batch,
                  "seconds": args.seconds, "threads": torch.get_num_threads(),
                  "others_busy_cpus": others,
                  "steps": [{"model": k, "precision": p, "ms_per_step": 1000 * step[(k, p)],
                             "audio_s_per_s": audio / step[(k, p)], "memory": memory.get((k, p)),
                             "syncs": syncs.get((k, p))}
                            for k, p in todo],
                  "same_step_check": {p: {"loss": c[0], "grad": c[1]} for p, c in checks.items()},
                  "ratios": results}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1))
        print(f"wrote {args.json}")
    return results


def cfg_frames(cfg, samples):
    """CNN frames of ``samples`` samples for ``cfg``'s conv layers."""
    for _, kernel, stride in cfg.conv_layers:
        samples = (samples - kernel) // stride + 1
    return samples


if __name__ == "__main__":
    main()
