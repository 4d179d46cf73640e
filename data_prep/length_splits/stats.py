"""Statistics of the length splits (``length_splits_stats.json``) and their
figure (``length_splits.png``: max / mean / min piece length per split, as
paper 003's Fig. 1 top).
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)


def split_stats(pieces, source_seconds=None):
    """count / hours / min / mean / max seconds of a list of pieces (rows
    with a ``duration``), and the fraction of ``source_seconds`` kept.

    >>> split_stats([{"duration": "1.5"}, {"duration": "2.5"}], source_seconds=4.0)
    {'count': 2, 'seconds': 4.0, 'hours': 0.0011, 'min_s': 1.5, 'mean_s': 2.0, 'max_s': 2.5, 'spread_s': 1.0, 'kept_fraction': 1.0}
    """
    secs = np.array([float(p["duration"]) for p in pieces] or [0.0])
    stats = {"count": len(pieces), "seconds": round(float(secs.sum()), 3),
             "hours": round(float(secs.sum()) / 3600, 4),
             "min_s": round(float(secs.min()), 4), "mean_s": round(float(secs.mean()), 4),
             "max_s": round(float(secs.max()), 4),
             "spread_s": round(float(secs.max() - secs.min()), 4)}
    if source_seconds:
        stats["kept_fraction"] = round(float(secs.sum()) / source_seconds, 5)
    return stats


def plot_stats(stats, path):
    """Max / mean / min piece length per split (paper 003, Fig. 1 top)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tags = list(stats)
    x = np.arange(len(tags))
    mins = [stats[t]["min_s"] for t in tags]
    means = [stats[t]["mean_s"] for t in tags]
    maxs = [stats[t]["max_s"] for t in tags]
    fig = Figure(figsize=(max(4.0, 1.3 * len(tags) + 1.5), 3.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.vlines(x, mins, maxs, color="0.6", linewidth=6, zorder=1)
    ax.scatter(x, maxs, marker="_", s=400, color="tab:red", label="max", zorder=2)
    ax.scatter(x, means, marker="o", s=30, color="tab:blue", label="mean", zorder=3)
    ax.scatter(x, mins, marker="_", s=400, color="tab:green", label="min", zorder=2)
    for xi, mean in zip(x, means):
        ax.annotate(f"{mean:.1f}s", (xi, mean), textcoords="offset points",
                    xytext=(12, -4), fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(tags)
    ax.set_xlim(-0.6, len(tags) - 0.4)
    ax.set_xlabel("pre-training split")
    ax.set_ylabel("sequence length (s)")
    ax.set_title("Length of the pieces per split (max / mean / min)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)



def splits_stats(source_csvs, rows, max_spread, pieces_of):
    """What ``length_splits_stats.json`` holds: the source manifests
    (``source_csvs``, their ``rows``), ``max_spread`` and, for every split
    of ``pieces_of`` (``{tag: (length, pieces)}``), :func:`split_stats` and
    what it dropped. Logs a warning for a split keeping under 99 % of the
    source."""
    source_seconds = sum(float(r["duration"]) for r in rows)
    source_chapters = {"-".join(r["ID"].split("-")[:2]) for r in rows}
    stats = {"source": {"csv": source_csvs, "count": len(rows),
                        "hours": round(source_seconds / 3600, 4)},
             "max_spread_s": float(max_spread), "splits": {}}
    for tag, (length, pieces) in pieces_of.items():
        kept_chapters = {p["ID"].rsplit("-", 2)[0] for p in pieces}
        summary = split_stats(pieces, source_seconds)
        stats["splits"][tag] = {
            "length_s": length, **summary,
            "dropped_seconds": round(source_seconds - summary["seconds"], 3),
            "dropped_chapters": len(source_chapters - kept_chapters)}
        kept = stats["splits"][tag]["kept_fraction"]
        if kept < 0.99:
            logger.warning("length split %s keeps only %.2f %% of the source: its "
                           "chapters are short for %g s pieces (see "
                           "data_prep.length_splits.cutting)", tag, 100 * kept, length)
    return stats
