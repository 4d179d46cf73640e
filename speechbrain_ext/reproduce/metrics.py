"""Our value of a cell: read from a step's output, or computed in-process.

Sources (a chain's ``metric`` step): ``downstream`` (the task's record in the
checkpoint's ``results.jsonl``), ``finetune`` (``wer.json``: split, decoding
``greedy`` / ``beam_no_lm`` / ``lm``, measure ``WER`` / ``CER``),
``pretrain`` (what the pre-training stored with the backbone: ``gpu_hours``,
on a CPU ``cpu_hours``, ``hours_seen``) and ``compute`` (functions below).

Example
-------
>>> compute({"function": "count_parameters", "zoo": "w2v2_tiny"})
11.1
>>> compute({"function": "table1_lr", "seconds": 87.5, "heuristic": "sub"})
6.04e-05
>>> compute({"function": "table2_hours", "seconds": 87.5})
9722.2
>>> import json, tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "wer.json").write_text(json.dumps({"test-clean": {"greedy": {"WER": 12.5, "CER": 4.0}}}))
>>> finetune_value(folder / "wer.json", {"split": "test-clean", "decoding": "greedy", "measure": "CER"})
4.0
>>> from speechbrain_ext.downstream.results import append_result
>>> _ = append_result(folder / "results.jsonl", task="sf", metric="cer", value=31.5, split="test",
...                   backbone="ckpt", frozen=True)
>>> _ = append_result(folder / "results.jsonl", task="sf", metric="slot_error", value=48.0,
...                   split="test", backbone="ckpt", frozen=True)  # secondary, written after
>>> downstream_value(folder / "results.jsonl", {"task": "sf", "freeze": True})
31.5
"""
import json
from functools import lru_cache
from pathlib import Path

from speechbrain_ext.downstream.results import TASKS, read_results
from speechbrain_ext.reproduce.errors import MetricError
from speechbrain_ext.training import lr_heuristics

ITERATIONS_001 = 400_000  # paper 001: every batch size trained for 400k iterations
TRAIN_HOURS_001 = 912.0  # paper 001 Table 2: the training set holds 912 h


def _round(value, digits=3):
    return float(f"{value:.{digits}g}") if abs(value) < 1 else round(value, 1)


@lru_cache(maxsize=None)
def _parameters_millions(zoo):
    """Paper 002's count (millions, one decimal) of zoo model ``zoo``."""
    from speechbrain_ext.models.registry import count_parameters
    from speechbrain_ext.models.zoo import zoo_config

    return round(count_parameters(zoo_config(zoo)) / 1e6, 1)


def compute(spec):
    """A value computed from the project's code (no run needed)."""
    name = spec["function"]
    if name == "count_parameters":
        return _parameters_millions(spec["zoo"])
    if name == "zoo_field":
        from speechbrain_ext.models.zoo import zoo_config

        value = getattr(zoo_config(spec["zoo"]), spec["field"], None)
        if value is None:
            raise MetricError(f"zoo model {spec['zoo']} has no {spec['field']}")
        return float(value)
    if name == "table1_lr":
        return _round(lr_heuristics.learning_rate(spec["heuristic"], float(spec["seconds"])))
    if name == "table1_gpus":
        return float(lr_heuristics.setting(float(spec["seconds"])).gpus)
    if name == "table1_accumulation":
        return float(lr_heuristics.setting(float(spec["seconds"])).accumulation)
    if name == "table2_hours":  # upper bound: batch seconds x iterations
        return round(float(spec["seconds"]) * ITERATIONS_001 / 3600, 1)
    if name == "table2_epochs":
        return float(round(float(spec["seconds"]) * ITERATIONS_001 / 3600 / TRAIN_HOURS_001))
    if name == "effective_batch_seconds":
        from speechbrain_ext.reproduce.chain import recipe_settings

        values = recipe_settings(spec["hparams"])
        return float(values["batch_seconds"]) * float(values["grad_accumulation_factor"]) * int(spec["gpus"])
    raise MetricError(f"unknown compute function {name!r}")


def finetune_value(wer_json, spec):
    """``spec``'s error rate (percent) from a fine-tuning run's ``wer.json``."""
    results = json.loads(Path(wer_json).read_text())
    split, decoding, measure = spec["split"], spec["decoding"], spec.get("measure", "WER")
    if split not in results:
        raise MetricError(f"{wer_json} has no split {split!r} (it has "
                          f"{', '.join(k for k, v in results.items() if isinstance(v, dict) and 'greedy' in v)}); "
                          "the micro fine-tuning evaluates dev-clean / test-clean only")
    if decoding not in results[split]:
        raise MetricError(f"{wer_json}: {split} has no {decoding!r} decoding (has {', '.join(results[split])})")
    return float(results[split][decoding][measure])


def downstream_value(results_file, spec):
    """The newest test record of ``spec``'s task and freeze in
    ``results_file``, in the task's main metric (paper 003 Table 1's: the
    CTC recipes append secondary ones, e.g. SF's slot scores, after it)."""
    frozen = bool(spec["freeze"])
    metric = TASKS[spec["task"]][1]
    records = [r for r in read_results(results_file) if r["task"] == spec["task"]
               and bool(r["frozen"]) == frozen and r["metric"] == metric and r["split"] == "test"]
    if not records:
        raise MetricError(f"{results_file} holds no {spec['task']} {metric} test record (frozen={frozen})")
    return float(records[-1]["value"])


def pretrain_value(checkpoint, spec):
    """What the pre-training stored with its backbone (``gpu_hours``, ...);
    ``divide_by_gpus`` turns device hours into wall hours, ``divide_by``
    hours into days. A CPU run stores ``cpu_hours`` for ``gpu_hours``."""
    from speechbrain_ext.interop.loading import backbone_metadata

    meta = backbone_metadata(checkpoint)
    key = spec["key"]
    if key not in meta and key == "gpu_hours" and "cpu_hours" in meta:
        key = "cpu_hours"
    if key not in meta:
        raise MetricError(f"{checkpoint}: the backbone stores no {spec['key']} (has {', '.join(meta)})")
    value = float(meta[key])
    return value / float(spec.get("divide_by_gpus", 1)) / float(spec.get("divide_by", 1))


def cell_value(steps, options=None):
    """Our value from the chain's steps (the metric step reads the step
    before it); ``options`` (``chain.Options``) for ``timing`` cells, which
    measure at the run's scale (``speechbrain_ext.reproduce.timing``)."""
    metric = steps[-1]
    spec = metric.spec
    source = spec["source"]
    if source == "compute":
        return compute(spec)
    if source == "timing":
        from speechbrain_ext.reproduce import timing

        return timing.cell_value(metric, options)
    producer = next((s for s in reversed(steps[:-1]) if s.kind in ("finetune", "downstream", "pretrain")), None)
    if source == "finetune":
        return finetune_value(producer.output / "wer.json", spec)
    if source == "downstream":
        return downstream_value(producer.results_file, spec)
    if source == "pretrain":
        return pretrain_value(metric.checkpoint, spec)
    raise MetricError(f"unknown metric source {source!r}")


def value_note(steps):
    """What to say beside our value: a GPU-hours cell measured on a CPU is
    in CPU hours (wall time x processes); a timing cell names the device it
    was measured on and the paper's."""
    spec = steps[-1].spec
    if spec.get("source") == "timing":  # where it was measured, beside the paper's device
        from speechbrain_ext.reproduce import timing

        return timing.value_note(spec)
    if spec.get("source") == "pretrain" and spec.get("key") == "gpu_hours":
        from speechbrain_ext.interop.loading import backbone_metadata

        if "gpu_hours" not in backbone_metadata(steps[-1].checkpoint):
            return "CPU hours: run without a GPU"
    return ""
