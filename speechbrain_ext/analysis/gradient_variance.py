"""How noisy is the gradient? Paper 001, Section 4.3.1 and Fig. 3.

For one model state, the gradient of the pre-training loss is computed on
``n = 10`` fixed batches (no weight update, no optimizer state, no learning
rate); for every scalar parameter ``theta_j`` the standard deviation of its
``n`` partial derivatives is taken, and those are averaged over all ``P``
scalar parameters::

    g_i  = d loss(batch_i) / d theta              i = 1..n, a vector of P entries
    s_j  = sqrt( sum_i (g_ij - mean_i g_ij)^2 / (n - ddof) )
    std  = (1 / P) * sum_j s_j

``ddof=1`` (default) is the sample standard deviation (``torch.std``'s
default, ``numpy.std(..., ddof=1)``); the paper does not say which it used,
and with ``n = 10`` the two differ by a factor ``sqrt(9/10)`` (5 %), the same
for every checkpoint. The parameters are those with ``requires_grad``;
a parameter the loss never reaches (``grad`` stays ``None`` on every batch)
is left out of ``P``, one reached on some batches only counts zeros on the
others.

A "batch" is one optimizer update's worth of data: with ``accumulate=True``
it is a sequence of GPU batches whose gradients are averaged, as DDP over
``gpus`` processes with ``accumulation`` steps averages them (the paper's
code computes the large batches with gradient accumulation).

Every batch runs with its own fixed random seed (``seed + i``): masks,
negatives, dropout and Gumbel noise are the same for batch ``i`` at every
checkpoint, so the batches are "kept constant over all checkpoints"
(the paper) in everything but the weights. The model runs in training mode
(the gradient the optimizer would see); its buffers (BatchNorm statistics),
``.grad`` tensors, mode and the global random state are restored afterwards.

Example
-------
>>> import torch
>>> model = torch.nn.Linear(3, 1, bias=False)
>>> batches = [torch.full((1, 3), float(i)) for i in range(4)]  # grad of sum(w . x) is x
>>> result = gradient_std(model, lambda m, x: m(x).sum(), batches)
>>> round(result.value, 6), result.num_scalars  # std of 0, 1, 2, 3 (ddof=1)
(1.290994, 3)
"""
import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechbrain_ext.interop.loading import backbone_metadata
from speechbrain_ext.io import checkpoints as checkpoint_files

logger = logging.getLogger(__name__)

MODEL_FILE = "model.ckpt"  # the pre-training recipe's recoverable "model"


@dataclass
class GradientStd:
    """Result of :func:`gradient_std`.

    ``value``: the mean over scalar parameters of their gradient std;
    ``num_scalars``: ``P``; ``num_batches``: ``n``; ``per_tensor``: the same
    mean restricted to each parameter tensor (``{name: float}``), to see
    which parts are noisy; ``mean_abs_gradient``: the mean over scalars of
    ``|mean_i g_ij|`` (the signal, for a signal-to-noise reading).
    """

    value: float
    num_scalars: int
    num_batches: int
    ddof: int
    per_tensor: dict = field(default_factory=dict)
    mean_abs_gradient: float = float("nan")


def _devices(module):
    return sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})


def gradient_std(model, loss_fn, batches, ddof=1, accumulate=False, seed=0, train=True):
    """Mean over scalar parameters of the std of their gradients over ``batches``.

    Arguments
    ---------
    model : torch.nn.Module
        The network at the checkpoint to measure (left unchanged).
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor``; e.g.
        :func:`contrastive_loss`.
    batches : sequence
        ``n >= ddof + 1`` batches (paper: 10); with ``accumulate`` each is a
        sequence of GPU batches.
    ddof : int
        Delta degrees of freedom of the std (1: sample std, 0: population).
    accumulate : bool
        Each batch is a sequence of GPU batches; its gradient is the mean of
        theirs.
    seed : int
        Batch ``i`` runs under ``torch.manual_seed(seed + i)``.
    train : bool
        Run the model in training mode (dropout, Gumbel noise) or eval mode.

    Returns
    -------
    GradientStd

    Example
    -------
    >>> model = torch.nn.Linear(2, 1)
    >>> batches = [torch.randn(8, 2) for _ in range(10)]
    >>> out = gradient_std(model, lambda m, x: m(x).pow(2).mean(), batches)
    >>> out.num_scalars, out.num_batches, out.value > 0
    (3, 10, True)
    """
    batches = list(batches)
    count = len(batches)
    if count - ddof < 1:
        raise ValueError(f"{count} batch(es) with ddof={ddof}: need at least {ddof + 1}")
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no parameter that requires a gradient")
    saved_grads = [p.grad for _, p in named]
    saved_buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    # Welford's running mean / M2 in float64: stable when |mean| >> std, and
    # only two copies of the parameters in memory (not n gradients)
    mean = [None] * len(named)
    m2 = [None] * len(named)
    touched = [False] * len(named)
    try:
        model.train(train)
        for i, batch in enumerate(batches):
            for _, p in named:
                p.grad = None
            with torch.random.fork_rng(devices=_devices(model)):
                torch.manual_seed(seed + i)
                parts = list(batch) if accumulate else [batch]
                if not parts:
                    raise ValueError(f"batch {i} holds no GPU batch")
                for part in parts:
                    loss = loss_fn(model, part)
                    if loss.dim() != 0:
                        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
                    (loss / len(parts)).backward()
            for k, (_, p) in enumerate(named):
                if p.grad is None:
                    grad = torch.zeros(p.shape, dtype=torch.float64, device=p.device)
                else:
                    grad = p.grad.detach().to(torch.float64)
                    touched[k] = True
                if mean[k] is None:
                    mean[k] = torch.zeros_like(grad)
                    m2[k] = torch.zeros_like(grad)
                delta = grad - mean[k]
                mean[k] += delta / (i + 1)
                m2[k] += delta * (grad - mean[k])
    finally:
        for (_, p), grad in zip(named, saved_grads):
            p.grad = grad
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in saved_buffers:
                    buffer.copy_(saved_buffers[name])
        model.train(was_training)
    total_std, total_abs, scalars, per_tensor = 0.0, 0.0, 0, {}
    for k, (name, _) in enumerate(named):
        if not touched[k]:
            continue
        std = (m2[k].clamp_min(0) / (count - ddof)).sqrt()
        per_tensor[name] = float(std.mean())
        total_std += float(std.sum())
        total_abs += float(mean[k].abs().sum())
        scalars += std.numel()
    if scalars == 0:
        raise ValueError("the loss reached no parameter: every gradient is None")
    return GradientStd(total_std / scalars, scalars, count, ddof, per_tensor, total_abs / scalars)


def contrastive_loss(reduction=None):
    """A ``loss_fn`` for :class:`Wav2Vec2ContrastiveModel` and the other
    pre-training objectives: ``batch`` is ``wav [B, S]`` or ``(wav, wav_lens)``.

    ``reduction=None``: the model's ``loss`` as it is trained (its own
    ``loss_reduction``); ``"mean"``: per masked frame; ``"sum"``: times the
    number of masked frames (fairseq's unnormalised sum, the scale of paper
    001's sum-reduced loss: larger GPU batches give larger gradients).
    Absolute values of Fig. 3 depend on this choice; the comparison between
    batch sizes does not change its direction.

    >>> loss_fn = contrastive_loss("sum")
    >>> loss_fn.reduction
    'sum'
    """
    if reduction not in (None, "mean", "sum"):
        raise ValueError(f"reduction must be None, 'mean' or 'sum', got {reduction!r}")

    def loss_fn(model, batch):
        wav, wav_lens = (batch if isinstance(batch, (tuple, list)) else (batch, None))
        out = model(wav, wav_lens)
        own = getattr(model, "loss_reduction", "mean")
        if reduction is None or reduction == own:
            return out["loss"]
        masked = out["time_mask"].sum()
        return out["loss"] * masked if reduction == "sum" else out["loss"] / masked

    loss_fn.reduction = reduction
    return loss_fn


def group_into_updates(gpu_batches, gpu_batches_per_update, num_updates=10):
    """The first ``num_updates`` updates of ``gpu_batches`` (e.g. a batch
    sampler built with a seed of its own, so the batches are independent of
    the training run's): a list of ``num_updates`` lists of
    ``gpu_batches_per_update`` GPU batches (``gpus * accumulation``).

    >>> group_into_updates([[0], [1], [2], [3], [4]], 2, num_updates=2)
    [[[0], [1]], [[2], [3]]]
    """
    iterator = iter(gpu_batches)
    updates = []
    for _ in range(num_updates):
        update = []
        for _ in range(gpu_batches_per_update):
            try:
                update.append(next(iterator))
            except StopIteration:
                raise ValueError(f"only {len(updates)} full updates of {gpu_batches_per_update} "
                                 f"GPU batches available, {num_updates} asked") from None
        updates.append(update)
    return updates


@dataclass
class CheckpointRef:
    """One checkpoint of one run: ``run`` (its curve's label), ``updates``,
    ``hours_seen`` (NaN when unknown), and ``path`` (a ``CKPT+*`` folder
    holding ``model.ckpt``) or ``state_dict`` given directly."""

    run: str
    updates: int
    hours_seen: float = float("nan")
    path: Path = None
    state_dict: dict = None


def run_checkpoints(save_folder, run=None):
    """The complete checkpoints of a pre-training run's ``save`` folder,
    oldest first (by update count), as :class:`CheckpointRef` (updates and
    hours seen from what ``BackboneSaver`` stored; a checkpoint without them
    is skipped with a warning).

    >>> run_checkpoints("/nonexistent/save")
    []
    """
    save_folder = Path(save_folder)
    run = save_folder.parent.name if run is None else run
    refs = []
    for folder in checkpoint_files.complete_checkpoints(save_folder):
        try:
            meta = backbone_metadata(folder)
        except Exception as err:  # a damaged backbone file: the curve goes on without it
            logger.warning(f"{folder}: skipped ({err})")
            continue
        if "updates" not in meta:
            logger.warning(f"{folder}: skipped (no update count stored with the backbone)")
            continue
        refs.append(CheckpointRef(run, int(meta["updates"]), float(meta.get("hours_seen", "nan")),
                                  folder))
    return sorted(refs, key=lambda r: r.updates)


def load_checkpoint(ref, model):
    """Loads ``ref``'s weights into ``model`` (strictly) and sets the
    update count (Gumbel temperature) where the model has one; returns it.
    ``ref.path``: a ``CKPT+*`` folder (its ``model.ckpt``) or the file.

    >>> model = torch.nn.Linear(2, 1)
    >>> ref = CheckpointRef("run", 5, state_dict={"weight": torch.ones(1, 2), "bias": torch.zeros(1)})
    >>> load_checkpoint(ref, model).weight.tolist()
    [[1.0, 1.0]]
    """
    state = ref.state_dict
    if state is None:
        path = Path(ref.path)
        path = path / MODEL_FILE if path.is_dir() else path
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    if hasattr(model, "set_num_updates"):
        model.set_num_updates(ref.updates)
    return model


def _batches_of(batches, run):
    return batches[run] if isinstance(batches, dict) else batches


def model_for(model, ref):
    """The module ``ref`` loads into: ``model`` itself, ``model[ref.run]``
    or ``model(ref)``.

    >>> net = torch.nn.Linear(1, 1)
    >>> model_for({"a": net}, CheckpointRef("a", 0)) is net
    True
    """
    if isinstance(model, dict):
        return model[ref.run]
    if isinstance(model, torch.nn.Module):
        return model
    return model(ref)


def write_rows(rows, csv_path, columns):
    """Writes ``rows`` (dicts) to ``csv_path`` with ``columns`` first (then
    any other keys, sorted); returns the path.

    >>> import tempfile
    >>> path = write_rows([{"run": "a", "updates": 5, "x": 0.5}], tempfile.mkdtemp() + "/r.csv",
    ...                   ["run", "updates"])
    >>> read_rows(path)
    [{'run': 'a', 'updates': 5.0, 'x': 0.5}]
    """
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for row in rows for k in row} - set(columns))
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns) + extra)
        writer.writeheader()
        writer.writerows(rows)
    return csv_path


def read_rows(csv_path):
    """The rows of a CSV written by :func:`write_rows`, numbers as floats."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                pass
    return rows


def gradient_std_over_checkpoints(checkpoints, model, loss_fn, batches, csv_path,
                                  figure_path=None, x="updates", **kwargs):
    """Fig. 3: :func:`gradient_std` at every checkpoint, a CSV and a figure.

    Arguments
    ---------
    checkpoints : iterable of CheckpointRef
        Any number of runs (e.g. ``run_checkpoints(save)`` of each).
    model : nn.Module, dict run -> nn.Module, or callable ``ref -> nn.Module``
        The architecture the checkpoints load into (with the run's own
        diversity weight: it is part of the loss).
    loss_fn : callable
        ``loss_fn(model, batch)``, e.g. ``contrastive_loss()``.
    batches : sequence, or dict run -> sequence
        The fixed batches (one set per batch size, as in the paper).
    csv_path, figure_path : str or Path
        One row per checkpoint: ``run, updates, hours_seen, gradient_std,
        num_scalars, mean_abs_gradient, checkpoint``.
    x : "updates" or "hours_seen"
        The figure's x axis.
    kwargs
        Passed to :func:`gradient_std` (``ddof``, ``accumulate``, ``seed``).

    Returns
    -------
    list of dict, the CSV's rows.

    Example
    -------
    >>> import tempfile
    >>> model = torch.nn.Linear(2, 1)
    >>> refs = [CheckpointRef("150s", step, step / 24.0,
    ...                       state_dict={"weight": torch.full((1, 2), 0.1 * step), "bias": torch.zeros(1)})
    ...         for step in (0, 5000)]
    >>> batches = [torch.randn(4, 2) for _ in range(10)]
    >>> folder = tempfile.mkdtemp()
    >>> rows = gradient_std_over_checkpoints(refs, model, lambda m, x: m(x).pow(2).mean(), batches,
    ...                                      folder + "/gradvar.csv", folder + "/gradvar.png")
    >>> [(row["run"], row["updates"]) for row in rows]
    [('150s', 0), ('150s', 5000)]
    """
    rows = []
    for ref in checkpoints:
        net = load_checkpoint(ref, model_for(model, ref))
        result = gradient_std(net, loss_fn, _batches_of(batches, ref.run), **kwargs)
        rows.append({"run": ref.run, "updates": ref.updates, "hours_seen": ref.hours_seen,
                     "gradient_std": result.value, "num_scalars": result.num_scalars,
                     "mean_abs_gradient": result.mean_abs_gradient,
                     "checkpoint": "" if ref.path is None else str(ref.path)})
        logger.info(f"{ref.run} @ {ref.updates}: gradient std {result.value:.4g}")
    write_rows(rows, csv_path, ["run", "updates", "hours_seen", "gradient_std", "num_scalars",
                                "mean_abs_gradient", "checkpoint"])
    if figure_path is not None:
        plot_curves(rows, figure_path, "gradient_std", x=x,
                    ylabel="std of the gradient (mean over parameters)", log_y=True)
    return rows


def plot_curves(rows, figure_path, y, x="updates", ylabel=None, log_y=False, ax=None):
    """One curve per ``run`` of ``row[y]`` against ``row[x]`` (``updates``
    or ``hours_seen``), saved to ``figure_path`` (png / pdf / svg) unless an
    ``ax`` is given (a panel of a larger figure). Returns the figure.

    Uses ``matplotlib.figure.Figure`` directly: no pyplot, no global
    backend switch, nothing left open.

    >>> import tempfile
    >>> rows = [{"run": "a", "updates": 0, "y": 1.0}, {"run": "a", "updates": 10, "y": 0.5}]
    >>> len(plot_curves(rows, tempfile.mkdtemp() + "/y.png", "y").axes)
    1
    """
    from matplotlib.figure import Figure

    if x not in ("updates", "hours_seen"):
        raise ValueError(f"x must be 'updates' or 'hours_seen', got {x!r}")
    figure = None
    if ax is None:
        figure = Figure(figsize=(6, 4))
        ax = figure.subplots()
    runs = {}
    for row in rows:
        runs.setdefault(row["run"], []).append(row)
    for run, members in runs.items():
        members = sorted(members, key=lambda r: math.inf if _isnan(r[x]) else float(r[x]))
        ax.plot([float(r[x]) for r in members], [float(r[y]) for r in members], marker=".",
                label=str(run))
    ax.set_xlabel("updates" if x == "updates" else "hours of audio seen")
    ax.set_ylabel(ylabel or y)
    if log_y:
        ax.set_yscale("log")
    if runs:
        ax.legend(fontsize="small")
    if figure is None:
        return ax.figure
    figure.tight_layout()
    Path(figure_path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(figure_path)
    return figure


def _isnan(value):
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True
