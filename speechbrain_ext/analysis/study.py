"""Helpers of the evidence study (``benchmarks/ssl_study.py``): reading a
pre-training ``train_log.txt``, the identity of an architecture, the spread
of a non-contrastive run's projections, and the study's table and figures.

The study command itself (stages, subprocesses, skipping finished work) is
``benchmarks/ssl_study.py``; this module holds what a report of any set of
runs needs, without the command line.

Example
-------
>>> records = parse_log_lines([
...     "step: 10 - train loss: 4.66, train accuracy: 1.29e-02, train update: 10, "
...     "train hours_seen: 9.78e-03",
...     "epoch: 1, update: 10, hours_seen: 9.78e-03 - train loss: 4.70 - valid loss: 4.60, "
...     "valid accuracy: 2.08e-02"])
>>> records[0]["kind"], records[0]["train"]["accuracy"], records[1]["valid"]["accuracy"]
('step', 0.0129, 0.0208)
>>> sorted(curve_series(records))
['accuracy', 'loss']
>>> curve_series(records)["accuracy"]["valid"]
[(0.00978, 0.0208)]
"""
import hashlib
import json
import math
from pathlib import Path

import torch
import yaml

from speechbrain_ext.models.registry import ARCHITECTURE_KEYS, architecture_of

# train-log statistics that are bookkeeping, not curves of the objective
BOOKKEEPING = ("update", "lr", "hours_seen", "seconds_per_update", "trained_seconds_per_update",
               "requested_seconds_per_update", "cpu_hours", "gpu_hours", "cpu_hours_per_1k_updates",
               "gpu_hours_per_1k_updates", "processes_with_equal_masks", "num_masked")


# ---------------------------------------------------------------- train logs


def _value(text):
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return {"True": True, "False": False}.get(text, text)


def _items(segment):
    """``{(dataset or None, key): value}`` of one ``" - "`` segment of a log line."""
    out = {}
    for item in segment.split(", "):
        if ": " not in item:
            continue
        name, value = item.split(": ", 1)
        words = name.split()
        dataset, key = (words[0], words[1]) if len(words) == 2 else (None, name.strip())
        out[(dataset, key)] = _value(value)
    return out


def parse_log_lines(lines):
    """Records of SpeechBrain ``FileTrainLogger`` lines (the pre-training
    recipe's ``train_log.txt``): one dict per line with ``kind`` (``step``:
    a per-update line, ``epoch``: a validation line), ``meta`` (the line's
    first segment) and ``train`` / ``valid`` / ``test`` statistics. Values are
    floats where they read as numbers (the logger keeps 3 significant
    digits). Lines that are not log records are skipped."""
    records = []
    for line in lines:
        line = line.strip()
        if not line or ": " not in line:
            continue
        segments = line.split(" - ")
        meta = {key: value for (_, key), value in _items(segments[0]).items()}
        if not meta:
            continue
        record = {"kind": "step" if "step" in meta else "epoch", "meta": meta,
                  "train": {}, "valid": {}, "test": {}}
        for segment in segments[1:]:
            for (dataset, key), value in _items(segment).items():
                if dataset in ("train", "valid", "test"):
                    record[dataset][key] = value
        records.append(record)
    return records


def parse_train_log(path):
    """``parse_log_lines`` of a file; ``[]`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return parse_log_lines(path.read_text(encoding="utf-8").splitlines())


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def curve_series(records, exclude=BOOKKEEPING, hours_offset=0.0):
    """``{quantity: {"train": [(hours, value)], "valid": [(hours, value)]}}``:
    every numeric statistic of the per-update lines (``train`` values, at
    the line's ``hours_seen``) and of the validation lines (``valid``
    values, at the meta ``hours_seen``), but those in ``exclude``.
    ``hours_offset`` is added to every hour (a run started from another's
    checkpoint: the audio seen before it)."""
    series = {}
    for record in records:
        if record["kind"] == "step":
            hours, stats, where = record["train"].get("hours_seen"), record["train"], "train"
        else:
            hours, stats, where = record["meta"].get("hours_seen"), record["valid"], "valid"
        if not _number(hours):
            continue
        for key, value in stats.items():
            if key in exclude or not _number(value):
                continue
            entry = series.setdefault(key, {"train": [], "valid": []})
            entry[where].append((round(hours + hours_offset, 6), value))
    return series


def last_train_stats(records):
    """The ``train`` statistics of the last per-update line (``{}`` if none)."""
    steps = [r for r in records if r["kind"] == "step"]
    return dict(steps[-1]["train"]) if steps else {}


class _PlainLoader(yaml.SafeLoader):
    """A HyperPyYAML file with every tag ignored: ``!new:`` mappings read as
    plain mappings, ``!ref <x>`` as its text."""


def _untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_PlainLoader.add_multi_constructor("!", _untagged)


def read_plain_yaml(path):
    """The values of a (HyperPyYAML) file such as a run's saved
    ``hyperparams.yaml``, tags ignored; ``{}`` when it cannot be read.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "h.yaml"
    >>> _ = path.write_text("k: 3\\nmodel: !new:a.B\\n    num_negatives: 100\\n    dim: !ref <k>\\n")
    >>> read_plain_yaml(path)["model"]
    {'num_negatives': 100, 'dim': '<k>'}
    """
    try:
        values = yaml.load(Path(path).read_text(), Loader=_PlainLoader)
    except (OSError, yaml.YAMLError):
        return {}
    return values if isinstance(values, dict) else {}


# ---------------------------------------------------------------- architectures


def architecture_key(backbone):
    """``(name, description)`` of a backbone's architecture: the registry's
    architecture name and its ``ARCHITECTURE_KEYS`` (what decides the shape,
    not dropouts), so that networks of one shape share a name, e.g.
    ``wav2vec2-3f1c09a2``.

    >>> from speechbrain_ext.models.registry import build_backbone
    >>> a = architecture_key(build_backbone({"zoo": "w2v2_micro"}))
    >>> b = architecture_key(build_backbone({"zoo": "w2v2_micro", "dropout": 0.0}))
    >>> a == b, a[0].startswith("wav2vec2-"), a[1]["dim"]
    (True, True, 64)
    """
    config = backbone.config.to_dict()
    shape = {k: config[k] for k in ARCHITECTURE_KEYS if k in config}
    shape = json.loads(json.dumps(shape))  # tuples -> lists
    name = architecture_of(backbone)
    digest = hashlib.sha1(json.dumps([name, shape], sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-{digest}", {"architecture": name, **shape}


def random_init_architecture(backbone):
    """The fine-tuning recipe's ``random_init_architecture`` mapping that
    builds a random network of ``backbone``'s architecture and config
    (``zoo: null`` clears the YAML's zoo model).

    >>> from speechbrain_ext.models.registry import build_backbone
    >>> spec = random_init_architecture(build_backbone({"zoo": "sewd_micro"}))
    >>> spec["zoo"], spec["architecture"], spec["dim"]
    (None, 'sewd', 64)
    """
    config = json.loads(json.dumps(backbone.config.to_dict()))
    return {"zoo": None, "architecture": architecture_of(backbone), **config}


# ---------------------------------------------------------------- projections


@torch.no_grad()
def projection_spread(backbone, weight, bias, waveforms):
    """Per-dimension standard deviation, over every frame of ``waveforms``,
    of ``backbone``'s last hidden state projected by ``weight`` ``[P, D]``
    and ``bias`` ``[P]`` (a non-contrastive run's projection head), in eval
    mode without masking. A collapsed dimension has a std near 0.

    Returns ``{"std": [P floats], "mean_std", "min_std", "max_std",
    "collapsed_dims" (std < 1e-3), "frames"}``.

    >>> from speechbrain_ext.models.registry import build_backbone
    >>> net = build_backbone({"zoo": "w2v2_micro"}).eval()
    >>> r = projection_spread(net, torch.randn(5, 64), torch.zeros(5), [torch.randn(8000)])
    >>> len(r["std"]), r["frames"], r["collapsed_dims"]
    (5, 24, 0)
    >>> projection_spread(net, torch.zeros(5, 64), torch.ones(5), [torch.randn(8000)])["collapsed_dims"]
    5
    """
    backbone.eval()
    frames = torch.cat([backbone(wav[None]).last_hidden_state[0] for wav in waveforms]).float()
    projected = frames @ weight.float().t() + bias.float()
    std = projected.std(0, unbiased=True) if len(projected) > 1 else torch.zeros(projected.shape[1])
    return {"std": std.tolist(), "mean_std": float(std.mean()), "min_std": float(std.min()),
            "max_std": float(std.max()), "collapsed_dims": int((std < 1e-3).sum()),
            "frames": int(len(projected))}


# ---------------------------------------------------------------- tables


def fmt(value, digits=3, percent=False, signed=False):
    """A table cell: ``-`` for None / NaN, else the number.

    >>> fmt(None), fmt(0.12345), fmt(0.5, percent=True), fmt(1.5, digits=1, signed=True)
    ('-', '0.123', '50.0 %', '+1.5')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, str):
        return value
    if percent:
        return f"{100 * value:.1f} %"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown_table(headers, rows):
    """A Markdown table (cells are given as strings; ``|`` is escaped).

    >>> print(markdown_table(["a", "b"], [["1", "x|y"]]))
    | a | b |
    |---|---|
    | 1 | x\\|y |
    """
    def cell(text):
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def relative_reduction(baseline, value):
    """``(baseline - value) / baseline`` (a fraction), None when undefined.

    >>> relative_reduction(80.0, 60.0), relative_reduction(0.0, 1.0), relative_reduction(None, 1.0)
    (0.25, None, None)
    """
    if baseline is None or value is None or baseline == 0:
        return None
    return (baseline - value) / baseline


# ---------------------------------------------------------------- figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pretraining_curves(curves, path, title="pre-training"):
    """One panel per quantity, every run overlaid: ``curves`` is ``{run:
    curve_series(...)}``; train values as lines, validation values as
    markers of the same colour, against hours of audio seen. Writes a PNG
    at ``path`` and returns the quantities plotted (empty: no figure)."""
    quantities = sorted({q for series in curves.values() for q in series})
    if not quantities:
        return []
    plt = _pyplot()
    columns = min(3, len(quantities))
    rows = math.ceil(len(quantities) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.2 * rows), squeeze=False)
    colours = {run: f"C{i % 10}" for i, run in enumerate(curves)}
    for ax, quantity in zip(axes.flat, quantities):
        for run, series in curves.items():
            entry = series.get(quantity)
            if not entry:
                continue
            if entry["train"]:
                xs, ys = zip(*entry["train"])
                ax.plot(xs, ys, color=colours[run], label=f"{run} (train)", linewidth=1.2)
            if entry["valid"]:
                xs, ys = zip(*entry["valid"])
                ax.plot(xs, ys, color=colours[run], marker="o", linestyle="--", linewidth=0.8,
                        markersize=4, label=f"{run} (valid)")
        ax.set_title(quantity, fontsize=10)
        ax.set_xlabel("hours of audio seen")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(quantities):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return quantities


def plot_phone_probe(points, baselines, path, probes=("linear",)):
    """Phone-probe accuracy against hours of audio seen, every run in one
    panel per probe kind.

    ``points``: ``{run: [(hours, {probe: accuracy})]}``; ``baselines``:
    ``{architecture: {"runs": [run], "random": {probe: (min, max)},
    "fbank": {probe: accuracy}}}``: the random networks' range of each
    architecture as a band and the filter banks as a dotted line. Writes a
    PNG and returns whether anything was drawn."""
    if not any(points.values()):
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(probes), figsize=(6.5 * len(probes), 4.2), squeeze=False)
    colours = {run: f"C{i % 10}" for i, run in enumerate(points)}
    for ax, probe in zip(axes[0], probes):
        for i, (arch, base) in enumerate(baselines.items()):
            band = base["random"].get(probe)
            label = f"random init ({arch}: {', '.join(base['runs'])})"
            if band is not None:
                low, high = band
                ax.axhspan(low, high if high > low else low + 1e-4, color=f"C{(i + 5) % 10}",
                           alpha=0.18, label=label)
            fbank = base["fbank"].get(probe)
            if fbank is not None and i == 0:
                ax.axhline(fbank, color="black", linestyle=":", linewidth=1.2, label="fbank (log-mel)")
        for run, run_points in points.items():
            values = sorted((h, acc[probe]) for h, acc in run_points if acc.get(probe) is not None)
            if values:
                xs, ys = zip(*values)
                ax.plot(xs, ys, color=colours[run], marker="o", label=run)
        ax.set_title(f"frame phone accuracy ({probe} probe)")
        ax.set_xlabel("hours of audio seen (from random initialisation)")
        ax.set_ylabel("test frame accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------- the study's report


def phone_probe_points(summaries, probes):
    """``(points, baselines)`` of ``plot_phone_probe`` from the study's run
    summaries (their ``phone_probe_curve``: per checkpoint ``total_hours``,
    ``architecture`` and ``compare_phone_probe``'s ``probes``)."""
    points, baselines = {}, {}
    curves = {s["run"]: s["phone_probe_curve"] for s in summaries}
    for s in summaries:
        curve = list(s["phone_probe_curve"])
        start = curves.get(s.get("init_from")) or []
        if curve and start:  # a run from another's final checkpoint starts at its point
            curve.insert(0, max(start, key=lambda c: c["total_hours"]))
        points[s["run"]] = [(c["total_hours"], {p: (c["probes"].get(p) or {}).get("pretrained")
                                                for p in probes})
                            for c in curve]
        for c in s["phone_probe_curve"]:
            base = baselines.setdefault(c["architecture"], {"runs": [], "random": {}, "fbank": {}})
            if s["run"] not in base["runs"]:
                base["runs"].append(s["run"])
            for p in probes:
                r = c["probes"].get(p)
                if r and r.get("random"):
                    base["random"][p] = (r["random"]["min"], r["random"]["max"])
                if r:
                    base["fbank"][p] = r["fbank"]
    return points, baselines


def _pretraining_row(s):
    c, n = s.get("contrastive"), s.get("noncontrastive")
    accuracy = f"{fmt(c['valid_accuracy'])} (chance {fmt(c['chance'], 4)})" if c else "-"
    perplexity = (f"{fmt(c['prob_perplexity'], 1)} / {fmt(c['code_perplexity'], 1)} of "
                  f"{c['codebook_size'] or '?'} ({fmt(c['prob_perplexity_fraction'], percent=True)} / "
                  f"{fmt(c['code_perplexity_fraction'], percent=True)})" if c else "-")
    losses = f"{fmt(n['valid_L_U'], 4)} / {fmt(n['valid_L_M'], 4)}" if n else "-"
    std = n and n.get("projection_std")
    spread = (f"{fmt(std['target']['mean_std'])} / {fmt(std['target']['min_std'])} "
              f"({std['target']['collapsed_dims']} collapsed); online "
              f"{fmt(std['online']['mean_std'])} / {fmt(std['online']['min_std'])}" if std else "-")
    hours = fmt(s.get("hours_seen")) + (f" (+{fmt(s['hours_offset'])} from {s['init_from']})"
                                        if s.get("init_from") and s.get("hours_offset") else "")
    return [s["run"], s["status"], f"{s.get('updates') or '-'} / {s.get('max_updates') or '-'}", hours,
            accuracy, perplexity, losses, spread]


def _probe_row(s, primary):
    phone = s.get("phone_probe")
    p = phone["probes"].get(primary) if phone else None
    cells = ["-"] * 5
    if p:
        r = p["random"]
        cells = [fmt(p["pretrained"]),
                 f"{fmt(r['best'])} ({fmt(r['min'])}-{fmt(r['max'])}, std {fmt(r['std'])})" if r else "-",
                 fmt(p["fbank"]), fmt(p["margin_over_random"], 1, signed=True),
                 fmt(p["margin_over_fbank"], 1, signed=True)]
    sp = s.get("speaker_probe")
    speaker = ["-", "-"]
    if sp:
        r = sp["random"]
        speaker = [fmt(sp["pretrained"]),
                   f"{fmt(r['mean'])} ({fmt(r['min'])}-{fmt(r['max'])}); {sp['verdict']}" if r else "-"]
    return [s["run"], str(phone["update"]) if phone else "-", *cells, *speaker]


def _finetune_row(s):
    ft = s["finetune"]
    ck, rn = ft["checkpoint"], ft["random_init"]
    done = ck or rn or {}
    budget = f"{done.get('budget') or '-'} ({done.get('updates') or '-'})"
    return [s["run"], budget, fmt(ck and ck["CER"], 1),
            fmt(rn and rn["CER"], 1), fmt(ft["relative_cer_reduction"], percent=True),
            fmt(ck and ck["WER"], 1), fmt(rn and rn["WER"], 1)]


def study_markdown(summaries, primary, title, figures=()):
    """The study's Markdown report of its run summaries
    (``benchmarks/ssl_study.py``'s ``run_summary``): pre-training, probes of
    the final checkpoint (``primary`` phone probe and speaker id), CTC
    fine-tuning, the phone probe along pre-training, notes."""
    curve = [[s["run"], str(c["update"]), fmt(c["hours_seen"]), fmt(c["total_hours"]),
              fmt(c["probes"][primary]["pretrained"]),
              fmt(c["probes"][primary]["margin_over_random"], 1, signed=True),
              fmt(c["probes"][primary]["margin_over_fbank"], 1, signed=True)]
             for s in summaries for c in s["phone_probe_curve"] if c["probes"].get(primary)]
    split = summaries[0]["finetune"]["split"] if summaries else "dev-clean"
    lines = [f"# {title}", "",
             "## Pre-training (final checkpoint; validation averages)", "",
             markdown_table(["run", "status", "updates", "hours seen", "contrastive accuracy",
                             "codebook perplexity prob / code (of G x V)", "L_U / L_M (valid)",
                             "projection std mean / min (target)"],
                            [_pretraining_row(s) for s in summaries]), "",
             f"## Probes of the final checkpoint ({primary} phone probe, frame accuracy; speaker id, "
             "accuracy)", "",
             markdown_table(["run", "update", "phone pre-trained", "phone random best (min-max, std)",
                             "phone fbank", "margin vs best random (points)", "margin vs fbank (points)",
                             "speaker pre-trained", "speaker random mean (min-max)"],
                            [_probe_row(s, primary) for s in summaries]), "",
             f"## CTC fine-tuning ({split}, greedy, %)", "",
             markdown_table(["run", "updates (best dev checkpoint at)", "CER checkpoint", "CER random init",
                             "relative CER reduction",
                             "WER checkpoint", "WER random init"], [_finetune_row(s) for s in summaries]), "",
             f"## Phone probe along pre-training ({primary})", "",
             markdown_table(["run", "update", "hours seen", "hours from random init", "accuracy",
                             "margin vs best random", "margin vs fbank"], curve), ""]
    notes = sorted({m for s in summaries for m in s.get("missing", [])})
    if notes:
        lines += ["## Notes", ""] + [f"- {m}" for m in notes] + [""]
    lines += ["Figures: " + (", ".join(f"`{name}`" for name in figures) if figures else
                             "none yet (no train log or phone-probe result to plot)"), ""]
    return "\n".join(lines)


# ------------------------------------------- paper 001: quality vs hours seen


def _as_float(value):
    """A finite float from a number or a CSV string; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def quality_against_hours(rows, csv_path, figure_path, metrics, x="upper_bound_hours", baselines=None,
                          title=None):
    """Paper 001's Figs 4-5: each downstream ``metric`` of the checkpoints of
    several batch sizes against the hours of audio seen in pre-training, one
    curve per batch size (``run``), one panel per metric, a log x axis (as
    the paper's); and the rows as a CSV.

    Arguments
    ---------
    rows : list of dict
        One per checkpoint: ``run``, ``updates``, the ``x`` column and each
        metric (e.g. ``wer`` of a fine-tuning or ``phone_accuracy`` of a
        probe); a missing or None metric is left out of its curve.
    csv_path, figure_path : str or Path
    metrics : dict
        ``{column: axis label}``, in panel order.
    x : str
        ``upper_bound_hours`` (updates x batch size, the paper's Fig. 4) or
        ``measured_hours`` / ``hours_seen``.
    baselines : dict, optional
        ``{column: (label, value)}`` drawn as a horizontal line (e.g. a
        random network of the same shape).

    Returns
    -------
    list of str: the metrics plotted.

    Example
    -------
    >>> import tempfile
    >>> rows = [{"run": run, "updates": u, "upper_bound_hours": u * s / 3600, "wer": 100 - u * s / 90}
    ...         for run, s in (("20s", 20), ("40s", 40)) for u in (90, 180)]
    >>> folder = tempfile.mkdtemp()
    >>> quality_against_hours(rows, folder + "/q.csv", folder + "/q.png", {"wer": "WER (%)"})
    ['wer']
    >>> open(folder + "/q.csv").readline().strip()
    'run,updates,upper_bound_hours,wer'
    """
    import csv

    metrics = dict(metrics)
    columns = ["run", "updates", x] + list(metrics)
    extra = sorted({k for row in rows for k in row} - set(columns))
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns + extra)
        writer.writeheader()
        writer.writerows(rows)
    plotted = [m for m in metrics if any(_as_float(r.get(m)) is not None for r in rows)]
    if not plotted:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(plotted), figsize=(4.8 * len(plotted), 3.6), squeeze=False)
    runs = list(dict.fromkeys(r["run"] for r in rows))
    for ax, metric in zip(axes.flat, plotted):
        for i, run in enumerate(runs):
            points = sorted((_as_float(r[x]), _as_float(r.get(metric))) for r in rows
                            if r["run"] == run and _as_float(r.get(metric)) is not None
                            and _as_float(r.get(x)) is not None)
            if points:
                ax.plot(*zip(*points), marker="o", color=f"C{i % 10}", label=str(run))
        if baselines and metric in baselines:
            label, value = baselines[metric]
            ax.axhline(value, color="grey", linestyle=":", label=label)
        ax.set_xscale("log")
        ax.set_xlabel({"upper_bound_hours": "hours of audio seen (upper bound)",
                       "measured_hours": "hours of audio seen (measured)"}.get(x, x))
        ax.set_ylabel(metrics[metric])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="batch size")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(figure_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_path, dpi=110)
    plt.close(fig)
    return plotted


def equal_hours_table(rows, metric, x="upper_bound_hours", digits=3):
    """Paper 001's Table 4: the checkpoints of different batch sizes that saw
    the same hours (``x`` rounded to ``digits`` significant digits), grouped:
    ``[(hours, [(run, updates, metric value), ...]), ...]`` for the hours
    reached by at least two runs, and the spread (max - min) of the metric.

    >>> rows = [{"run": "20s", "updates": 180, "upper_bound_hours": 1.0, "wer": 40.0},
    ...         {"run": "40s", "updates": 90, "upper_bound_hours": 1.0, "wer": 42.0},
    ...         {"run": "40s", "updates": 180, "upper_bound_hours": 2.0, "wer": 30.0}]
    >>> equal_hours_table(rows, "wer")
    [(1.0, [('20s', 180, 40.0), ('40s', 90, 42.0)], 2.0)]
    """
    groups = {}
    for row in rows:
        hours, value = _as_float(row.get(x)), _as_float(row.get(metric))
        if hours is None or value is None or hours <= 0:
            continue
        key = float(f"{hours:.{digits}g}")
        groups.setdefault(key, []).append((row["run"], int(row["updates"]), value))
    out = []
    for hours in sorted(groups):
        members = groups[hours]
        if len({run for run, _, _ in members}) >= 2:
            values = [v for _, _, v in members]
            out.append((hours, members, max(values) - min(values)))
    return out
