"""Timing cells, measured in-process: seconds per training batch (paper 003
Tables 2 and 3, through ``speechbrain_ext.analysis.resources``) and inference
seconds over LibriSpeech dev-clean (paper 002's "Infer. (s)" columns,
``speechbrain_ext.analysis.inference_time``, the protocol of
``results/inference_time.py``).

A cell's chain is one metric step ``{step: metric, source: timing, measure: ...}``:

* ``measure: pretrain_step`` (paper 003 Table 2): one wav2vec 2.0 pre-training
  step (``resources.Workload``: zero_grad, forward, backward, AdamW) of zoo
  ``model`` on a batch of ``batch`` random signals of ``length`` seconds, in
  ``precision`` ``fp32`` or ``mixed`` (= resources' ``fp16``: fp16 autocast +
  GradScaler); ``objective`` (default ``contrastive``).
* ``measure: downstream_step`` (Table 3): one downstream training step with a
  ``freeze``-d or trainable upstream of ``model`` (resources' downstream
  mode: the same small head for every task), at the batch and average
  length that ``resources.TABLE3_TASKS`` gives the ``task`` row (kws, sf, er,
  sid/asv, asr).
* ``measure: downstream_batch`` (Table 3's B): that batch (a setting).
* ``measure: inference`` (paper 002): the forward of zoo ``model`` over
  every LibriSpeech dev-clean utterance under the corpora root, one at a time
  (batch 1), fp32, inference mode; seconds summed over the utterances.

Where: ``cuda`` if available, else the CPU, whatever the paper's device
(``paper_device``) was; the note beside our value says both ("measured on
cpu (2 threads); paper's device: RTX 2080Ti"). ``memory_gb`` caps the memory
at the paper device's (CUDA: ``set_per_process_memory_fraction``; CPU: a cell
whose measured peak exceeds it is OOM, as ``resources --memory_gb``): the OOM
cells can then be compared with the paper's, the seconds cannot.

Scales (``Options.scale``): ``paper`` the registry's model (wav2vec2-base),
resources' default 1 warm-up + 3 timed steps (median), every dev-clean
utterance with 2 timed passes (``inference_time.py``'s default); ``micro`` the
micro model of the same architecture (``w2v2_micro``, ...) at the same
length, batch and precision, 1 + 2 steps (resources' ``--quick``), the
dev-clean of ``data/mini``, 1 pass; ``--quick`` 1 + 1 steps, 4 utterances.
On the CPU at paper scale each training cell runs in a fresh process
(``resources.call``): the kernel's OOM killer then ends the cell, not the run.

Values are seconds (float). A cell that ran out of memory is ``OOM``
(:class:`OutOfMemory`); a precision this device cannot run, a missing
dev-clean or a failed measurement is a ``MetricError`` (``not measurable
here: ...``): never a number.

Example
-------
>>> spec = {"step": "metric", "source": "timing", "measure": "pretrain_step", "model": "w2v2_base",
...         "length": 15, "batch": 12, "precision": "mixed", "memory_gb": 11, "paper_device": "RTX 2080Ti"}
>>> cell = measurement(spec, "micro", device="cpu")
>>> cell["model"], cell["seconds"], cell["batch"], cell["precision"], cell["warmup"], cell["repeats"]
('w2v2_micro', 15.0, 12, 'fp16', 1, 2)
>>> measurement(spec, "paper", device="cpu")["model"]
'w2v2_base'
>>> measurement({"measure": "downstream_step", "model": "w2v2_base", "task": "sid/asv", "freeze": True},
...             "paper", device="cpu")["batch"]
8
>>> f"{OutOfMemory('CUDA out of memory'):g}", round(OutOfMemory() - 0.28, 6)
('OOM', None)
"""
import json
from pathlib import Path

import torch

from speechbrain_ext.analysis import inference_time, resources
from speechbrain_ext.reproduce.chain import CORPORA, REPO_ROOT, corpora_root
from speechbrain_ext.reproduce.errors import MetricError
from speechbrain_ext.training.recipe_cli import yaml_defaults

MEASURES = ("pretrain_step", "downstream_step", "downstream_batch", "inference")
PRECISIONS = {"fp32": "fp32", "mixed": "fp16"}  # the registry's name -> resources' (paper 003: FP32 / Mixed)
MICRO = {"wav2vec2": "w2v2_micro", "sew": "sew_micro", "sewd": "sewd_micro"}  # architecture -> stand-in
INFERENCE_PASSES = {"paper": 2, "micro": 1}  # timed passes; 2 = results/inference_time.py's --repeats
QUICK_UTTERANCES = 4
CELL_TIMEOUT = 3600.0  # seconds, an isolated cell (resources' --cell_timeout)
_NOTES = {}  # spec key -> the note of its latest measurement (value_note reads it)


class OutOfMemory(float):
    """Our value of a cell whose measurement ran out of memory, as the paper
    prints such cells: ``OOM`` when printed; NaN in arithmetic and in the
    results file, with no difference to the paper's value
    (``report.append`` computes ``round(ours - paper, 6)``: None here)."""

    def __new__(cls, reason=""):
        value = super().__new__(cls, "nan")
        value.reason = reason
        return value

    def __format__(self, spec):
        return "OOM"

    def __repr__(self):
        return "OOM"

    __str__ = __repr__

    def __sub__(self, other):
        return self

    __rsub__ = __sub__

    def __round__(self, ndigits=None):
        return None


def _key(spec):
    return json.dumps(spec, sort_keys=True, default=str)


def _require(spec, key):
    if spec.get(key) in (None, "null"):
        raise MetricError(f"timing metric {spec}: no {key!r} (set it in the table's chain or the row's / "
                          f"column's params, speechbrain_ext/reproduce/registry/paper00N.yaml)")
    return spec[key]


def default_device():
    """Where timing runs: the GPU if there is one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def micro_model(model):
    """The micro zoo model of ``model``'s architecture (``sq_w2v_*`` are SEW backbones)."""
    from speechbrain_ext.models.registry import architecture_of_config
    from speechbrain_ext.models.zoo import zoo_config

    return MICRO[architecture_of_config(zoo_config(model))]


def table3_task(task):
    """``(name, batch, average seconds)`` of a Table 3 row from ``resources.TABLE3_TASKS``."""
    name = str(task).upper()
    if name not in resources.TABLE3_TASKS:
        raise MetricError(f"timing metric: task {task!r} is no row of resources.TABLE3_TASKS "
                          f"({', '.join(k.lower() for k in resources.TABLE3_TASKS)})")
    return (name, *resources.TABLE3_TASKS[name])


def measurement(spec, scale, quick=False, device=None):
    """What ``spec`` measures at ``scale`` on ``device`` (default
    :func:`default_device`), without running it: a ``resources`` cell spec
    (training steps), ``{"measure": "inference", model, device, passes,
    utterances}`` (utterances None: all) or ``{"measure":
    "downstream_batch", batch}``."""
    measure = spec.get("measure")
    if measure not in MEASURES:
        raise MetricError(f"timing metric {spec}: measure {measure!r}, expected one of {MEASURES}")
    if scale not in INFERENCE_PASSES:
        raise MetricError(f"timing metric: unknown scale {scale!r} (paper or micro)")
    device = device or default_device()
    if measure == "downstream_batch":
        return {"measure": measure, "batch": table3_task(_require(spec, "task"))[1]}
    model = _require(spec, "model")
    model = micro_model(model) if scale == "micro" else model
    if measure == "inference":
        return {"measure": measure, "model": model, "device": device, "passes": INFERENCE_PASSES[scale],
                "utterances": QUICK_UTTERANCES if quick else None}
    precision = spec.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise MetricError(f"timing metric {spec}: precision {precision!r}, expected one of {list(PRECISIONS)}")
    steps = resources.QUICK if scale == "micro" else resources.DEFAULTS
    common = {"device": device, "warmup": steps["warmup"], "repeats": 1 if quick else steps["repeats"],
              "layerdrop": 0.0, "seed": 0, "memory_fraction": resources.memory_fraction_of(spec.get("memory_gb"), device),
              "sample_ms": 5, "threads": resources.resolve_threads(None)}
    if measure == "pretrain_step":
        cell, = resources.pretrain_specs(model, [spec.get("objective", "contrastive")],
                                         [float(_require(spec, "length"))], [int(_require(spec, "batch"))],
                                         [PRECISIONS[precision]], common)
    else:
        mode = "frozen" if _require(spec, "freeze") is True else "unfrozen"
        cells = resources.downstream_specs(model, [table3_task(_require(spec, "task"))], [PRECISIONS[precision]],
                                           common, None, "weighted")
        cell, = [c for c in cells if c["objective"] == mode]
    return {**cell, "measure": measure}


def _where(device, threads=None):
    device = torch.device(device)
    if device.type == "cuda":
        return f"measured on cuda ({torch.cuda.get_device_name(device)})"
    threads = threads or torch.get_num_threads()
    return f"measured on cpu ({threads} thread{'' if threads == 1 else 's'})"


def _recipe_batch(task):
    """The downstream recipes' ``batch_size`` of a Table 3 row (``sid/asv``: both YAMLs)."""
    sizes = []
    for name in str(task).lower().split("/"):
        path = REPO_ROOT / "recipes" / "downstream" / name / "hparams" / f"{name}.yaml"
        batch = ((yaml_defaults(path) if path.is_file() else None) or {}).get("batch_size")
        sizes.append(f"{name} {batch.value if batch is not None else '?'}")
    return ", ".join(sizes)


def _time_training(cell, spec, scale, root):
    """Seconds per batch of a ``resources`` cell, or :class:`OutOfMemory`; notes."""
    device = cell["device"]
    if cell["part"] == "downstream":  # a random backbone of the model (speed does not depend on weights)
        folder = Path(root) / "timing"
        folder.mkdir(parents=True, exist_ok=True)
        cell["checkpoint"] = resources.make_checkpoint(cell["model"], folder, cell["layerdrop"], cell["seed"])
    # paper scale on the CPU: a fresh process per cell (an OOM kill ends the cell, not the run)
    isolate = torch.device(device).type == "cpu" and scale == "paper"
    run = {k: v for k, v in cell.items() if k != "measure"}
    try:
        result = resources.call("run_cell", {"spec": run}, isolate, cell["threads"], CELL_TIMEOUT)
    finally:
        if cell["memory_fraction"]:  # the cap is per process: lift it for whatever runs next
            torch.cuda.set_per_process_memory_fraction(1.0, torch.device(device))
    notes = [_where(device, result.get("threads") or cell["threads"])]
    if spec.get("paper_device"):
        notes[0] += f"; paper's device: {spec['paper_device']}"
    if spec.get("memory_gb"):
        notes.append(f"memory capped at {spec['memory_gb']} GiB as the paper's device")
    if scale == "micro":
        notes.append(f"model {cell['model']}")
    if cell["precision"] == "fp16":
        notes.append("mixed = fp16 autocast + GradScaler" +
                     (" (a CPU without fp16 units runs it in fp32, slower)" if device == "cpu" else ""))
    if cell["part"] == "downstream":
        notes.append(f"{cell['task']} {cell['seconds']:g} s x {cell['batch']}, the same small head for every task")
    status = result.get("status")
    if status == "ok":
        over = resources.over_cpu_budget(result, device, spec.get("memory_gb") and float(spec["memory_gb"]) * 1024)
        if over:
            notes.append(f"out of memory: {over}")
            return OutOfMemory(notes[-1]), notes
        if result.get("note"):
            notes.append(result["note"])
        return float(result["s_per_batch"]), notes
    if status == "OOM":
        notes.append(f"out of memory: {result.get('note', '')}".rstrip(": "))
        return OutOfMemory(result.get("note", "")), notes
    where = "; ".join(notes).replace("measured on ", "on ", 1)
    if status == "unsupported":
        raise MetricError(f"not measurable here: {result.get('note')} ({where})")
    raise MetricError(f"the measurement did not finish ({status}: {result.get('note')}; {where})")


def time_inference(model, waves, device, passes):
    """Seconds to run zoo ``model``'s backbone (random weights: speed does not
    depend on them) over ``waves`` (each ``[samples]`` at 16 kHz), by
    ``speechbrain_ext.analysis.inference_time.time_inference``."""
    from speechbrain_ext.models.registry import build_backbone
    from speechbrain_ext.models.zoo import zoo_config

    device = torch.device(device)
    torch.manual_seed(0)
    net = build_backbone(zoo_config(model)).to(device).eval()
    return inference_time.time_inference(net, waves, device, passes)


def _time_inference(cell, spec, options):
    folder = corpora_root(options) / CORPORA["librispeech"][0]
    files = sorted((folder / "dev-clean").rglob("*.flac")) if (folder / "dev-clean").is_dir() else []
    if not files:
        make = (f"python -m data_prep.synthetic --out {corpora_root(options)} --only librispeech"
                if options.scale == "micro" else f"place LibriSpeech at {folder} (or give --corpora_root)")
        raise MetricError(f"not measurable here: no LibriSpeech dev-clean .flac under {folder} (the inference time "
                          f"is over dev-clean); make it with: {make}")
    waves, _ = inference_time.load_utterances(folder, cell["utterances"] or len(files))
    audio = sum(len(w) for w in waves) / inference_time.SAMPLE_RATE
    notes = [_where(cell["device"]) + (f"; paper's device: {spec['paper_device']}" if spec.get("paper_device") else ""),
             f"{len(waves)} dev-clean utterances ({audio:.0f} s of audio) of {folder}, batch 1, fp32, "
             f"{cell['passes']} pass(es)"]
    if options.scale == "micro":
        notes.append(f"model {cell['model']}")
    try:
        return time_inference(cell["model"], waves, cell["device"], cell["passes"]), notes
    except Exception as err:  # noqa: BLE001 - an OOM is a value, anything else a bug
        if not resources.is_oom(err):
            raise
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    resources.free_memory(cell["device"])  # outside the except: its frames hold the tensors
    notes.append(f"out of memory: {reason}")
    return OutOfMemory(reason), notes


def cell_value(step, options):
    """Our value of a timing metric ``step`` (``chain.Step``) for the run's
    ``options`` (``chain.Options``: scale, quick, corpora root); its note
    is kept for :func:`value_note`."""
    if options is None:
        raise MetricError("a timing cell needs the run's options: metrics.cell_value(plan, options)")
    spec = step.spec
    cell = measurement(spec, options.scale, options.quick)
    if cell["measure"] == "downstream_batch":
        value, notes = float(cell["batch"]), [
            f"the batch of resources.TABLE3_TASKS that the timing cells use (the downstream YAMLs: "
            f"{_recipe_batch(spec['task'])})"]
    elif cell["measure"] == "inference":
        value, notes = _time_inference(cell, spec, options)
    else:
        value, notes = _time_training(cell, spec, options.scale, step.output)
    _NOTES[_key(spec)] = "; ".join(notes)
    return value


def value_note(spec):
    """The note of ``spec``'s latest measurement in this process ("measured
    on cpu (2 threads); paper's device: RTX 2080Ti; ...")."""
    return _NOTES.get(_key(spec), "")
