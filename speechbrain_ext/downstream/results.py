"""Downstream results: one JSON-lines file, one record per (run, metric), and
the table of paper 003 (Table 1: tasks across, Froz./Unfroz. under each).

A record holds ``task``, ``metric``, ``value`` (percent), ``split``,
``backbone`` (the checkpoint), ``label`` (the table's row name), ``frozen``,
``steps`` (downstream optimizer steps), ``pretrain_hours`` (hours of audio
the backbone's pre-training saw, stored with the backbone
(``pretraining_hours``); None when unknown, e.g. an HF folder), ``seed``
(the run's YAML ``seed``; None, or absent in records written before it was
stored, when unknown) and ``time`` (UTC, ISO 8601), plus task extras (e.g.
ER's per-fold ``folds``, ASV's ``trials``).

Seeds (paper 002, Tables 3 and 5: mean and standard deviation over three
fine-tuning runs): :func:`aggregate_over_seeds` groups the records that
differ only by seed and by what a run measures (``OUTCOME_FIELDS``: value,
time, steps, per-fold values), the latest record of each seed counting;
``format_table(..., aggregate_seeds=True)`` writes ``mean ± std (n=3)``, the
standard deviation being the sample one (``ddof=1``, as ``statistics.stdev``)
and a single seed printed as a plain value. Records without a seed are never
merged with seeded ones. The same for the fine-tuning recipe's ``wer.json``
files (:func:`finetune_run_records`, :func:`format_finetune_table`,
``recipes/finetune/aggregate.py``).

    python -m speechbrain_ext.downstream.results results/downstream/results.jsonl --seeds

Example
-------
>>> import tempfile
>>> path = tempfile.mkdtemp() + "/results.jsonl"
>>> for frozen, value in ((True, 91.5), (False, 97.25)):
...     _ = append_result(path, task="kws12", metric="acc", value=value, split="test",
...                       backbone="ckpt", frozen=frozen, steps=10)
>>> print(format_table(read_results(path), tasks=("kws12", "asv")))  # no ASV run: no ASV columns
| model | KWS (12) Froz. | KWS (12) Unfroz. |
|  | Acc ↑ | Acc ↑ |
|---|---|---|
| ckpt | 91.50 | 97.25 |
>>> _ = append_result(path, task="er", metric="acc", value=61.0, split="test", backbone="ckpt",
...                   frozen=True, steps=10, chance=25.0)
>>> print(format_table(read_results(path), tasks=("er",)))
| model | ER Froz. |
|  | Acc ↑ |
|---|---|
| ckpt | 61.00 (chance 25.00) |
>>> print(format_table(read_results(path), tasks=("kws12", "asv"), empty_columns=True))
| model | KWS (12) Froz. | KWS (12) Unfroz. | ASV Froz. | ASV Unfroz. |
|  | Acc ↑ | Acc ↑ | EER ↓ | EER ↓ |
|---|---|---|---|---|
| ckpt | 91.50 | 97.25 | - | - |
>>> for seed, value in ((1, 96.0), (2, 97.0), (3, 98.5)):
...     _ = append_result(path, task="kws12", metric="acc", value=value, split="test",
...                       backbone="ckpt", frozen=False, steps=10, seed=seed)
>>> print(format_table(read_results(path), tasks=("kws12",), aggregate_seeds=True))
| model | KWS (12) Froz. | KWS (12) Unfroz. |
|  | Acc ↑ | Acc ↑ |
|---|---|---|
| ckpt | 91.50 | 97.17 ± 1.26 (n=3) |
"""
import argparse
import hashlib
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path

from speechbrain_ext.interop.loading import backbone_metadata
from speechbrain_ext.io.checkpoints import CheckpointError, complete_checkpoints

# task key -> (column title, metric key, higher is better); the order is
# paper 003 Table 1's, then paper 001's extra tasks
TASKS = {
    "kws12": ("KWS (12)", "acc", True),
    "kws35": ("KWS (35)", "acc", True),
    "sf": ("SF", "cer", False),
    "er": ("ER", "acc", True),
    "sid": ("SID", "acc", True),
    "asv": ("ASV", "eer", False),
    "asr": ("ASR", "wer", False),
    "pr": ("PR", "per", False),
    "ic": ("IC", "acc", True),
    "asr_zh": ("ASR-zh", "cer", False),
}
TABLE1_TASKS = ("kws12", "kws35", "sf", "er", "sid", "asv", "asr")
PAPER001_TASKS = ("pr", "asr", "asr_zh", "asv", "er", "ic")
METRIC_TITLES = {"acc": "Acc", "eer": "EER", "wer": "WER", "cer": "CER", "per": "PER"}
REQUIRED_FIELDS = ("task", "metric", "value", "split", "backbone", "frozen")
# what a run measures, which may differ between seeds of one setting; every
# other field (task, metric, split, backbone, label, frozen, pretrain_hours,
# extras such as ASV's trials) must be equal for records to be aggregated
OUTCOME_FIELDS = ("value", "seed", "time", "steps", "folds")
AUDIO_COUNTER_FILE = "audio_counter.ckpt"


def higher_is_better(metric):
    """Accuracy-like metrics go up, error rates go down."""
    return metric in ("acc",) or metric.endswith("acc")


def pretraining_hours(source):
    """Hours of audio seen by the pre-training run that wrote ``source`` (a
    backbone file, a ``CKPT+*`` folder, or a save folder: its newest
    complete checkpoint whose backbone reads, ``speechbrain_ext.io.checkpoints``),
    as stored with the backbone (``hours_seen`` of
    ``speechbrain_ext.interop.loading.backbone_metadata``, written by
    ``BackboneSaver``); None when not recorded or unreadable.

    >>> import tempfile
    >>> from speechbrain_ext.models.registry import build_backbone, save_backbone
    >>> path = save_backbone(build_backbone({"zoo": "w2v2_micro"}), tempfile.mkdtemp() + "/b.ckpt",
    ...                      metadata={"hours_seen": 12.5, "updates": 1000})
    >>> pretraining_hours(path)
    12.5
    """
    try:
        hours = backbone_metadata(source).get("hours_seen")
    except CheckpointError:
        hours = None
    if hours is not None:
        return float(hours)
    # backbones saved before BackboneSaver stored the hours (and checkpoints
    # written then): the run's audio counter beside them, found by file name
    return _audio_counter_hours(source)


def pretraining_device_hours(source):
    """``{"gpu_hours": h}`` (or ``cpu_hours``) of the pre-training run that
    wrote ``source``, as its backbone file records them; ``{}`` when unknown
    (HF folders, fairseq files, checkpoints written before they were stored)."""
    try:
        metadata = backbone_metadata(source)
    except CheckpointError:
        return {}
    return {k: float(v) for k, v in metadata.items() if k in ("gpu_hours", "cpu_hours")}


def _audio_counter_hours(source):
    """The hours of the ``audio_counter.ckpt`` of the checkpoint holding
    ``source`` (a ``backbone.ckpt`` or a ``CKPT+*`` folder), or of the newest
    complete checkpoint with one of a save folder; None when there is none."""
    path = Path(source)
    if path.is_file():
        path = path.parent
    if not (path / AUDIO_COUNTER_FILE).is_file():
        path = next((c for c in complete_checkpoints(path) if (c / AUDIO_COUNTER_FILE).is_file()),
                    None)
    if path is None:
        return None
    try:
        return float((path / AUDIO_COUNTER_FILE).read_text()) / 3600
    except (OSError, ValueError):
        return None


def append_result(path, task, metric, value, split, backbone, frozen, steps=None,
                  pretrain_hours=None, label=None, seed=None, **extra):
    """Append one record (see the module docstring) to the JSON-lines file
    ``path``; returns the record. One ``write`` per record, so concurrent
    runs appending to one file do not interleave lines. ``seed``: the run's
    seed (records of several seeds are aggregated by
    :func:`aggregate_over_seeds`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{task}/{metric}: non-finite value {value}")
    record = {"task": task, "metric": metric, "value": value, "split": split,
              "backbone": str(backbone), "label": label or str(backbone), "frozen": bool(frozen),
              "steps": steps, "pretrain_hours": pretrain_hours,
              "seed": None if seed is None else int(seed),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def read_results(path):
    """Records of a results file, in order; a malformed line is an error
    naming the file and line."""
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not a JSON record ({err})") from err
            missing = [k for k in REQUIRED_FIELDS if k not in record]
            if missing:
                raise ValueError(f"{path}:{number}: record lacks {missing}")
            records.append(record)
    return records


def mean_std(values):
    """Mean and sample standard deviation (``ddof=1``, ``statistics.stdev``)
    of ``values``; the deviation is None for a single value.

    >>> mean_std([10.0, 12.0, 14.0])
    (12.0, 2.0)
    >>> mean_std([7.5])
    (7.5, None)
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def format_mean_std(mean, std=None, n=1, digits=2):
    """``"mean ± std (n=N)"``, or the plain mean for a single run.

    >>> format_mean_std(12.0, 2.0, 3), format_mean_std(7.5, None, 1)
    ('12.00 ± 2.00 (n=3)', '7.50')
    """
    if n <= 1 or std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})"


def _identity(record, outcome_fields):
    """The fields that must agree for records to be seeds of one setting
    (as a hashable JSON string); a seeded record never matches an unseeded
    one."""
    key = {k: v for k, v in record.items() if k not in outcome_fields}
    key["__seeded"] = record.get("seed") is not None
    return json.dumps(key, sort_keys=True, default=str)


def aggregate_over_seeds(records, outcome_fields=OUTCOME_FIELDS):
    """Group ``records`` that differ only in ``outcome_fields`` (the seed,
    the value, ...): within a group the latest record of each seed counts
    (a re-run replaces its seed's value; records without a seed replace each
    other). Returns one dict per group, in the order of each group's latest
    record: its identity fields plus ``value`` (the mean), ``std`` (sample,
    ``ddof=1``; None for one seed), ``n``, ``seeds`` and ``values`` (in seed
    order of first appearance), and ``time`` of the latest record.

    >>> rows = [{"task": "er", "value": v, "seed": s} for v, s in ((60.0, 1), (64.0, 2), (62.0, 3))]
    >>> [(g["value"], g["std"], g["n"], g["seeds"]) for g in aggregate_over_seeds(rows)]
    [(62.0, 2.0, 3, [1, 2, 3])]
    """
    groups = {}
    for index, record in enumerate(records):
        key = _identity(record, outcome_fields)
        group = groups.setdefault(key, {"record": record, "by_seed": {}, "last": index})
        group["by_seed"][record.get("seed")] = record  # the latest record of a seed wins
        group["record"], group["last"] = record, index
    aggregated = []
    for group in sorted(groups.values(), key=lambda g: g["last"]):
        seeds = list(group["by_seed"])
        values = [float(group["by_seed"][seed]["value"]) for seed in seeds]
        mean, std = mean_std(values)
        entry = {k: v for k, v in group["record"].items() if k not in outcome_fields}
        entry.update(value=mean, std=std, n=len(values), seeds=seeds, values=values,
                     time=group["record"].get("time"))
        aggregated.append(entry)
    return aggregated


def format_table(records, tasks=TABLE1_TASKS, split="test", digits=2, aggregate_seeds=False,
                 empty_columns=False):
    """A Markdown table in paper 003 Table 1's layout: one row per backbone
    (``label``), for each task a Froz. and an Unfroz. column with the task's
    main metric on ``split`` (the latest record wins; ``-`` where missing).
    A column no row has a value in (a task or mode not run) is left out
    unless ``empty_columns`` (the paper's whole layout). A record with a
    ``chance`` (classification recipes write the share of the evaluated
    split's most frequent class) shows it beside its value.

    ``aggregate_seeds``: a cell holds the mean and sample standard deviation
    over the seeds of the latest group of records that differ only by seed
    (:func:`aggregate_over_seeds`), written ``mean ± std (n=3)``; a single
    seed is written as a plain value."""
    cells, rows, selected = {}, [], []
    for record in records:
        if record["split"] != split or record["task"] not in tasks:
            continue
        if record["metric"] != TASKS[record["task"]][1]:
            continue  # secondary metrics (e.g. SF slot-value error) are not in Table 1
        row = record.get("label") or record["backbone"]
        if row not in rows:
            rows.append(row)
        selected.append(record)
    for record in (aggregate_over_seeds(selected) if aggregate_seeds else selected):
        row = record.get("label") or record["backbone"]
        cell = (format_mean_std(record["value"], record["std"], record["n"], digits) if aggregate_seeds
                else f"{record['value']:.{digits}f}")
        if record.get("chance") is not None:  # classification: the majority class's share
            cell += f" (chance {record['chance']:.{digits}f})"
        cells[row, record["task"], bool(record["frozen"])] = cell
    columns = [(t, frozen) for t in tasks for frozen in (True, False)
               if empty_columns or any((row, t, frozen) in cells for row in rows)]
    header = ["model"] + [f"{TASKS[t][0]} {'Froz.' if frozen else 'Unfroz.'}" for t, frozen in columns]
    units = [""] + [f"{METRIC_TITLES[TASKS[t][1]]} {'↑' if TASKS[t][2] else '↓'}" for t, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(units) + " |",
             "|" + "---|" * len(header)]
    for row in rows:
        values = [cells.get((row, t, frozen), "-") for t, frozen in columns]
        lines.append("| " + " | ".join([row] + values) + " |")
    return "\n".join(lines)


# -- fine-tuning runs (recipes/finetune/train.py's wer.json) ------------------

WER_FILE = "wer.json"
WER_DECODINGS = ("greedy", "beam_no_lm", "lm")
# what the runs of one setting may differ in: the seed and what it measures
FINETUNE_OUTCOME_FIELDS = ("value", "seed", "time", "updates", "folder")
# top-level keys of a run's hyperparams.yaml that do not make it another
# setting: the seed, folders derived from the output folder, data locations
RUN_CONFIG_IGNORED = ("seed", "__set_seed", "output_folder", "save_folder", "prep_folder",
                      "train_log", "data_folder", "librilight_folder", "skip_prep", "num_workers")
_TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:")


def run_config_digest(hparams_yaml, ignore=RUN_CONFIG_IGNORED):
    """A short hash of a run's saved ``hyperparams.yaml`` (the YAML with the
    command-line overrides and its references resolved, as SpeechBrain saves
    it), its top-level entries in ``ignore`` and comments left out and the
    run's output folder replaced by ``<output_folder>`` wherever it appears
    (checkpoint and log folders): two runs with the same digest differ only
    by seed (and paths). None when the file is missing.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name, seed, lr in (("a", 1, 0.1), ("b", 2, 0.1), ("c", 3, 0.2)):
    ...     _ = (folder / name).write_text(f"seed: {seed}  # the seed\\nlr: {lr}\\n"
    ...                                    f"output_folder: x/{seed}\\nlogger:\\n  dir: x/{seed}/log\\n")
    >>> a, b, c = (run_config_digest(folder / n) for n in "abc")
    >>> a == b != c
    True
    """
    path = Path(hparams_yaml)
    if not path.is_file():
        return None
    entries, current = {}, None
    for line in path.read_text().splitlines():
        content = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not content:
            continue
        match = _TOP_LEVEL_KEY.match(content)
        if match and not line[0].isspace():
            current = match.group(1)
            entries[current] = [content]
        elif current is not None:
            entries[current].append(content)
    output_folder = " ".join(entries.get("output_folder", ["output_folder:"]))
    output_folder = output_folder.split(":", 1)[1].strip()
    kept = {k: [line.replace(output_folder, "<output_folder>") if output_folder else line
                for line in v] for k, v in entries.items() if k not in ignore}
    return hashlib.sha1(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:10]


def finetune_run_records(folder, ignore=RUN_CONFIG_IGNORED):
    """Records of one fine-tuning run (``folder/wer.json``, or a
    ``wer.json`` path): one per (split, decoding, metric) with ``setting``,
    ``pretrained``, ``config`` (:func:`run_config_digest` of the folder's
    ``hyperparams.yaml``), ``split``, ``decoding`` (greedy, beam_no_lm, lm),
    ``metric`` (WER, CER), ``value``, ``seed``, ``updates`` and ``folder``."""
    path = Path(folder)
    path = path if path.is_file() else path / WER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a run of recipes/finetune/train.py writes "
                                f"{WER_FILE} when it ends)")
    try:
        wer = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON file ({err})") from err
    identity = {"setting": wer.get("setting"), "pretrained": wer.get("pretrained"),
                "config": run_config_digest(path.parent / "hyperparams.yaml", ignore)}
    records = []
    for split, entry in wer.items():
        if not isinstance(entry, dict) or "greedy" not in entry:
            continue  # "tuned", and the scalars (updates, seed, ...)
        for decoding in WER_DECODINGS:
            for metric, value in entry.get(decoding, {}).items():
                records.append({**identity, "split": split, "decoding": decoding, "metric": metric,
                                "value": float(value), "seed": wer.get("seed"),
                                "updates": wer.get("updates"), "folder": str(path.parent)})
    return records


def format_finetune_table(records, metric="WER", digits=2):
    """A Markdown table of fine-tuning runs aggregated over seeds: one row
    per setting (setting, pretrained checkpoint, config digest), one column
    per split and decoding, ``mean ± std (n=3)`` (sample std, ``ddof=1``)
    or a plain value for one seed."""
    groups = aggregate_over_seeds([r for r in records if r["metric"] == metric],
                                  FINETUNE_OUTCOME_FIELDS)
    columns, rows, cells = [], [], {}
    for group in groups:
        row = (group["setting"], group["pretrained"], group["config"])
        column = (group["split"], group["decoding"])
        rows += [row] if row not in rows else []
        columns += [column] if column not in columns else []
        cells[row, column] = format_mean_std(group["value"], group["std"], group["n"], digits)
    names = {"greedy": "greedy", "beam_no_lm": "beam, no LM", "lm": "LM"}
    split_order = list(dict.fromkeys(split for split, _ in columns))
    columns = sorted(columns, key=lambda c: (split_order.index(c[0]), WER_DECODINGS.index(c[1])))
    header = ["setting", "pretrained", "config"] + [f"{s} {names[d]} {metric}" for s, d in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join([str(x) for x in row] +
                                       [cells.get((row, c), "-") for c in columns]) + " |")
    return "\n".join(lines)


def main(argv=None):
    """``python -m speechbrain_ext.downstream.results FILE [--seeds]``: print
    the table of a results file (``--seeds``: mean ± std over seeds)."""
    parser = argparse.ArgumentParser(description="Print the downstream results table of a "
                                                 "results.jsonl file")
    parser.add_argument("results", help="results.jsonl (recipes/downstream/*/train.py write it)")
    parser.add_argument("--tasks", nargs="+", default=list(TABLE1_TASKS), choices=list(TASKS))
    parser.add_argument("--split", default="test")
    parser.add_argument("--label", default=None, help="only the rows of this label")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--seeds", action="store_true",
                        help="aggregate records that differ only by seed: mean ± sample std "
                             "(ddof=1) (n=seeds)")
    parser.add_argument("--empty_columns", action="store_true",
                        help="keep the columns of tasks and modes not run (paper 003's whole layout)")
    args = parser.parse_args(argv)
    if not Path(args.results).is_file():
        print(f"error: no results file {args.results} (recipes/downstream/<task>/train.py and "
              f"run_suite.py append to the YAML's results_file)", file=sys.stderr)
        return 2
    records = read_results(args.results)
    if args.label is not None:
        records = [r for r in records if r.get("label") == args.label]
    print(format_table(records, tasks=args.tasks, split=args.split, digits=args.digits,
                       aggregate_seeds=args.seeds, empty_columns=args.empty_columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
