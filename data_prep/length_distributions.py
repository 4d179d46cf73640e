"""Utterance-length distributions of the downstream datasets (paper 003,
"Match to win", Fig. 1 below; the upper panel, the pre-training splits'
max / mean / min, is ``data_prep.length_splits.stats.plot_stats``).

One violin per task of the log length of its utterances, read from the
``duration`` column of the prepared manifests, with short horizontal lines
at the min, mean and max (the mean is the mean length in seconds, as the
paper's "average lengths 1.0 s, 2.7 s, 4.6 s, 8.3 s and 12.7 s", drawn at
its log) and the mean written next to it. The y axis is log10 seconds,
labelled in seconds. A task whose utterances all have one length (Speech
Commands' 1 s clips) is drawn as a flat bar instead of a violin.

Tasks and the manifests that stand for their datasets (all splits of each;
paper 003's Table 1): KWS Speech Commands (``kws12_{train,valid,test}.csv``),
SF Timers and Such (``{train,dev,test}.csv``), ER IEMOCAP (one fold's
``fold1_{train,valid,test}.csv``: the folds share the utterances), SID
VoxCeleb1 identification (``iden_*.csv``), ASV VoxCeleb1 verification
(``veri_train.csv``, ``veri_test.csv``), ASR LibriSpeech train-clean-100,
and paper 001's PR (LibriSpeech ``*_phn.csv``) and IC (Fluent Speech
Commands). Any manifest with ``ID,duration`` works, the transfer corpora's
included.

Outputs: the figure (``--out``, PNG through matplotlib's Agg canvas) and
the statistics of every task next to it (``<out>.json``: count, hours,
min / mean / median / max seconds, as ``split_stats``).

Command line::

    python -m data_prep.length_distributions --out results/length_distributions.png \\
        --manifests KWS=prep/sc/kws12_train.csv,prep/sc/kws12_valid.csv,prep/sc/kws12_test.csv \\
                    SF=prep/tas/train.csv,prep/tas/dev.csv,prep/tas/test.csv \\
                    ER=prep/iemocap/fold1_train.csv,... ASR=prep/ls/train-clean-100.csv
"""
import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from speechbrain_ext.io.data import DataPreparationError

from .length_splits.stats import split_stats
from .manifests import atomic_write_text

logger = logging.getLogger(__name__)

TASK_ORDER = ("KWS", "SF", "ER", "SID", "ASV", "ASR", "PR", "IC")
TASK_DATASETS = {"KWS": "Speech Commands", "SF": "Timers and Such", "ER": "IEMOCAP",
                 "SID": "VoxCeleb1", "ASV": "VoxCeleb1", "ASR": "LibriSpeech",
                 "PR": "LibriSpeech", "IC": "Fluent Speech",
                 # paper 002 Table 5's transfer corpora, when given
                 "TL3": "TED-LIUM 3", "VP": "VoxPopuli", "F+SB": "Fisher+SWBD"}
SECOND_TICKS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


def read_durations(csv_paths):
    """The ``duration`` (seconds) of every row of the manifests, as a float
    array; a missing file, one without a ``duration`` column, an empty
    one or a non-positive duration is a :class:`DataPreparationError`
    naming it."""
    import csv

    values = []
    for path in [csv_paths] if isinstance(csv_paths, (str, os.PathLike)) else csv_paths:
        if not os.path.isfile(path):
            raise DataPreparationError(f"{path}: manifest not found (prepare it first)")
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if "duration" not in (reader.fieldnames or []):
                raise DataPreparationError(f"{path}: no 'duration' column (header: "
                                           f"{reader.fieldnames}); expected a data_prep "
                                           "manifest")
            rows = [row["duration"] for row in reader]
        if not rows:
            raise DataPreparationError(f"{path}: manifest has no rows")
        try:
            durations = [float(d) for d in rows]
        except ValueError as err:
            raise DataPreparationError(f"{path}: bad duration ({err})") from None
        if min(durations) <= 0:
            raise DataPreparationError(f"{path}: a duration is not positive")
        values += durations
    return np.asarray(values, dtype=np.float64)


def distribution_stats(durations):
    """``split_stats`` of the lengths plus the median and the mean log10.

    >>> s = distribution_stats(np.array([1.0, 2.0, 4.0]))
    >>> s["count"], round(s["mean_s"], 3), s["median_s"], round(s["mean_log10_s"], 3)
    (3, 2.333, 2.0, 0.301)
    """
    durations = np.asarray(durations, dtype=np.float64)
    stats = split_stats([{"duration": d} for d in durations])
    stats["median_s"] = round(float(np.median(durations)), 4)
    stats["mean_log10_s"] = round(float(np.log10(durations).mean()), 4)
    return stats


def ordered_tasks(tasks):
    """Tasks in the paper's order (``TASK_ORDER``), others after, as given."""
    known = [t for t in TASK_ORDER if t in tasks]
    return known + [t for t in tasks if t not in TASK_ORDER]


def plot_length_distributions(durations_of, path, title=None):
    """Draw one violin of log10 length per task of ``durations_of``
    (``{task: seconds array}``) with min / mean / max lines; saves ``path``.
    Returns the figure's ``{task: distribution_stats}``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = ordered_tasks(list(durations_of))
    if not tasks:
        raise ValueError("plot_length_distributions: no task given")
    stats = {t: distribution_stats(durations_of[t]) for t in tasks}
    fig = Figure(figsize=(max(4.0, 1.1 * len(tasks) + 1.5), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.7
    for x, task in enumerate(tasks):
        logs = np.log10(np.asarray(durations_of[task], dtype=np.float64))
        if logs.size > 1 and np.ptp(logs) > 1e-6:
            parts = ax.violinplot([logs], positions=[x], widths=width, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor("tab:blue")
                body.set_alpha(0.35)
        else:  # one length only: a flat bar
            ax.fill_between([x - width / 2, x + width / 2], logs[0] - 0.01, logs[0] + 0.01,
                            color="tab:blue", alpha=0.35)
        s = stats[task]
        for value, color in ((s["min_s"], "tab:green"), (s["mean_s"], "tab:blue"),
                             (s["max_s"], "tab:red")):
            ax.hlines(np.log10(value), x - 0.18, x + 0.18, color=color, linewidth=2)
        ax.annotate(f"{s['mean_s']:.1f}s", (x + 0.2, np.log10(s["mean_s"])), fontsize=8,
                    va="center")
    low = min(np.log10(stats[t]["min_s"]) for t in tasks)
    high = max(np.log10(stats[t]["max_s"]) for t in tasks)
    ticks = [t for t in SECOND_TICKS if low - 0.3 <= np.log10(t) <= high + 0.3]
    ax.set_yticks([np.log10(t) for t in ticks])
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set_ylim(low - 0.15, high + 0.15)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([f"{t}\n{TASK_DATASETS.get(t, '')}".rstrip() for t in tasks],
                       fontsize=8)
    ax.set_xlim(-0.6, len(tasks) - 0.4)
    ax.set_ylabel("utterance length (s, log scale)")
    ax.set_title(title or "Length of the downstream utterances (min / mean / max)",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.plot([], [], color="tab:red", label="max")
    ax.plot([], [], color="tab:blue", label="mean")
    ax.plot([], [], color="tab:green", label="min")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return stats


def parse_manifests(items):
    """``{task: [csv, ...]}`` of ``TASK=CSV[,CSV...]`` arguments (a task may
    be repeated; its manifests add up).

    >>> parse_manifests(["KWS=a.csv,b.csv", "ASR=c.csv", "KWS=d.csv"])
    {'KWS': ['a.csv', 'b.csv', 'd.csv'], 'ASR': ['c.csv']}
    """
    out = {}
    for item in items:
        task, sep, paths = item.partition("=")
        if not sep or not task or not paths:
            raise ValueError(f"expected TASK=CSV[,CSV...], got {item!r}")
        out.setdefault(task, []).extend(p for p in paths.split(",") if p)
    return out


def length_distributions(manifests, out, stats_path=None, title=None):
    """Figure and statistics of ``manifests`` (``{task: [csv]}``): writes
    ``out`` and ``stats_path`` (default ``<out without suffix>.json``);
    returns the statistics (with each task's manifests)."""
    durations = {task: read_durations(paths) for task, paths in manifests.items()}
    stats = plot_length_distributions(durations, out, title)
    for task in stats:
        stats[task] = {"manifests": [str(p) for p in manifests[task]], **stats[task]}
    stats_path = stats_path or str(Path(out).with_suffix(".json"))
    atomic_write_text(stats_path, json.dumps(stats, indent=1) + "\n")
    logger.info("length distributions of %s -> %s, %s", list(stats), out, stats_path)
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.length_distributions",
        description="Paper 003 Fig. 1 (below): utterance-length distribution of each "
                    "downstream task, from prepared manifests.")
    parser.add_argument("--manifests", nargs="+", required=True, metavar="TASK=CSV[,CSV]",
                        help="the manifests of each task (e.g. KWS=kws12_train.csv,"
                             "kws12_valid.csv,kws12_test.csv)")
    parser.add_argument("--out", required=True, help="figure file (.png)")
    parser.add_argument("--stats", default=None, help="statistics JSON (default: <out>.json)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        manifests = parse_manifests(args.manifests)
    except ValueError as err:
        parser.error(str(err))
    try:
        stats = length_distributions(manifests, args.out, args.stats, args.title)
    except DataPreparationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for task, s in stats.items():
        print(f"{task}: {s['count']} utterances, {s['hours']} h, min {s['min_s']} s, "
              f"mean {s['mean_s']} s, max {s['max_s']} s")
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
