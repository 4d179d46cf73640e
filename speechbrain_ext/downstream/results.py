"""Downstream results: one JSON-lines file, one record per (run, metric), and
the table of paper 003 (Table 1: tasks across, Froz./Unfroz. under each).

A record holds ``task``, ``metric``, ``value`` (percent), ``split``,
``backbone`` (the checkpoint), ``label`` (the table's row name), ``frozen``,
``steps`` (downstream optimizer steps), ``pretrain_hours`` (hours of audio
the backbone's pre-training saw, stored with the backbone
(``pretraining_hours``); None when unknown, e.g. an HF folder) and ``time``
(UTC, ISO 8601).

Example
-------
>>> import tempfile
>>> path = tempfile.mkdtemp() + "/results.jsonl"
>>> for frozen, value in ((True, 91.5), (False, 97.25)):
...     _ = append_result(path, task="kws12", metric="acc", value=value, split="test",
...                       backbone="ckpt", frozen=frozen, steps=10)
>>> print(format_table(read_results(path), tasks=("kws12", "asv")))
| model | KWS (12) Froz. | KWS (12) Unfroz. | ASV Froz. | ASV Unfroz. |
|  | Acc ↑ | Acc ↑ | EER ↓ | EER ↓ |
|---|---|---|---|---|
| ckpt | 91.50 | 97.25 | - | - |
"""
import json
import math
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
                  pretrain_hours=None, label=None, **extra):
    """Append one record (see the module docstring) to the JSON-lines file
    ``path``; returns the record. One ``write`` per record, so concurrent
    runs appending to one file do not interleave lines."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{task}/{metric}: non-finite value {value}")
    record = {"task": task, "metric": metric, "value": value, "split": split,
              "backbone": str(backbone), "label": label or str(backbone), "frozen": bool(frozen),
              "steps": steps, "pretrain_hours": pretrain_hours,
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


def format_table(records, tasks=TABLE1_TASKS, split="test", digits=2):
    """A Markdown table in paper 003 Table 1's layout: one row per backbone
    (``label``), for each task a Froz. and an Unfroz. column with the task's
    main metric on ``split`` (the latest record wins; ``-`` where missing)."""
    cells, rows = {}, []
    for record in records:
        if record["split"] != split or record["task"] not in tasks:
            continue
        if record["metric"] != TASKS[record["task"]][1]:
            continue  # secondary metrics (e.g. SF slot-value error) are not in Table 1
        row = record.get("label") or record["backbone"]
        if row not in rows:
            rows.append(row)
        cells[row, record["task"], bool(record["frozen"])] = record["value"]
    header = ["model"] + [f"{TASKS[t][0]} {mode}" for t in tasks for mode in ("Froz.", "Unfroz.")]
    units = [""] + [f"{METRIC_TITLES[TASKS[t][1]]} {'↑' if TASKS[t][2] else '↓'}"
                    for t in tasks for _ in range(2)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(units) + " |",
             "|" + "---|" * len(header)]
    for row in rows:
        values = [cells.get((row, t, frozen)) for t in tasks for frozen in (True, False)]
        lines.append("| " + " | ".join([row] + ["-" if v is None else f"{v:.{digits}f}"
                                                for v in values]) + " |")
    return "\n".join(lines)
