"""Codebook statistics of a contrastive checkpoint: paper 001, Fig. 1 D-I
and Figs 9-11.

- validation accuracy (a masked frame is right when its positive has the
  highest logit: the objective's ``accuracy``), weighted by masked frames;
- the perplexity of each codebook (group) *separately*: ``exp`` of the
  entropy of the softmax distribution over its ``V`` entries averaged over
  the masked frames of a batch (what the diversity loss pushes up; the
  model logs the sum over groups as ``prob_perplexity``), averaged over the
  validation batches; also the same from the argmax assignments (``code``)
  and from the distribution pooled over all the validation set's frames;
- the mean / minimum / maximum cosine similarity over the ``V (V - 1) / 2``
  pairs of distinct entries of each codebook (no data needed).

Codebook layout (``speechbrain_ext.pretraining.quantizer``, HF's names):
``codevectors`` is ``[1, G * V, D / G]`` and entry ``v`` of group ``g`` is
``codevectors[0, g * V + v]`` (the quantizer's ``view(G, V, D / G)``);
fairseq calls the same tensor ``vars``.

Example
-------
>>> from speechbrain_ext.pretraining.quantizer import GumbelVectorQuantizer
>>> quantizer = GumbelVectorQuantizer(4, num_groups=2, num_vars=3, codevector_dim=4)
>>> with torch.no_grad():
...     _ = quantizer.codevectors.copy_(torch.tensor([[[1., 0], [0, 1], [1, 1],      # group 0
...                                                [1, 0], [2, 0], [3, 0]]]))   # group 1
>>> [{k: round(v, 3) for k, v in s.items()} for s in codebook_similarity(quantizer)]
[{'mean': 0.471, 'min': 0.0, 'max': 0.707}, {'mean': 1.0, 'min': 1.0, 'max': 1.0}]
"""
import logging
import math
from pathlib import Path

import torch

from speechbrain_ext.analysis.gradient_variance import (model_for, load_checkpoint, plot_curves,
                                                        write_rows)
from speechbrain_ext.pretraining.quantizer import GumbelVectorQuantizer, perplexity

logger = logging.getLogger(__name__)


def codebook_entries(source, num_groups=None):
    """The codebooks as a ``[G, V, D / G]`` tensor (detached, fp32).

    ``source``: a quantizer (``codevectors``, or fairseq's ``vars``, with
    ``num_groups``), a model holding one (``.quantizer``), a ``[1, G*V, d]``
    / ``[G*V, d]`` tensor with ``num_groups``, or a ``[G, V, d]`` tensor.

    >>> codebook_entries(torch.arange(12.).view(1, 6, 2), num_groups=2)[1, 0].tolist()
    [6.0, 7.0]
    """
    if isinstance(source, torch.nn.Module):
        quantizer = find_quantizer(source)
        tensor = getattr(quantizer, "codevectors", None)
        if tensor is None:
            tensor = quantizer.vars
        num_groups = quantizer.num_groups if num_groups is None else num_groups
    else:
        tensor = torch.as_tensor(source)
    tensor = tensor.detach().float()
    if tensor.dim() == 3 and tensor.shape[0] != 1 and num_groups is None:
        return tensor  # already [G, V, d]
    if num_groups is None:
        raise ValueError("num_groups is needed to split a [1, G*V, d] codebook tensor")
    flat = tensor.reshape(-1, tensor.shape[-1])
    if flat.shape[0] % num_groups:
        raise ValueError(f"{flat.shape[0]} entries do not split into {num_groups} groups")
    return flat.view(num_groups, flat.shape[0] // num_groups, flat.shape[-1])


def find_quantizer(model):
    """``model`` itself, ``model.quantizer``, or its first
    ``GumbelVectorQuantizer`` submodule (a codebook is ``codevectors`` /
    ``vars``).

    >>> find_quantizer(torch.nn.Sequential(GumbelVectorQuantizer(4, 2, 3, 4))).num_vars
    3
    """
    for candidate in (model, getattr(model, "quantizer", None)):
        if candidate is not None and (hasattr(candidate, "codevectors") or hasattr(candidate, "vars")):
            return candidate
    for module in model.modules():
        if isinstance(module, GumbelVectorQuantizer):
            return module
    raise ValueError(f"{type(model).__name__} holds no codebook quantizer")


def pairwise_cosine(entries, eps=1e-8):
    """``[V, V]`` cosine similarities of the rows of ``entries`` ``[V, d]``
    (a zero row has similarity 0 to every row).

    >>> [[round(v, 3) for v in row] for row in pairwise_cosine(torch.tensor([[1., 0], [1, 1]])).tolist()]
    [[1.0, 0.707], [0.707, 1.0]]
    """
    unit = torch.nn.functional.normalize(entries.double(), dim=-1, eps=eps)
    return (unit @ unit.T).float()


def codebook_similarity(source, num_groups=None):
    """Per codebook, the ``mean``, ``min`` and ``max`` cosine similarity over
    the pairs of distinct entries (``i < j``: the diagonal's 1s excluded).

    Arguments
    ---------
    source : see :func:`codebook_entries`

    Returns
    -------
    list of dict, one per group: ``{"mean", "min", "max"}`` floats.

    >>> codebook_similarity(torch.tensor([[[1., 0], [0, 1]], [[1., 1], [2, 2]]]))
    [{'mean': 0.0, 'min': 0.0, 'max': 0.0}, {'mean': 1.0, 'min': 1.0, 'max': 1.0}]
    """
    entries = codebook_entries(source, num_groups)
    if entries.shape[1] < 2:
        raise ValueError("a codebook needs two entries for a pairwise similarity")
    upper = torch.triu_indices(entries.shape[1], entries.shape[1], offset=1)
    out = []
    for group in entries:
        pairs = pairwise_cosine(group)[upper[0], upper[1]]
        out.append({"mean": float(pairs.double().mean()), "min": float(pairs.min()),
                    "max": float(pairs.max())})
    return out


def group_perplexities(logits):
    """Softmax and argmax perplexity of each group over the given frames.

    Arguments
    ---------
    logits : torch.Tensor
        ``[frames, G, V]`` quantizer logits (``weight_proj`` output viewed).

    Returns
    -------
    (prob, code) : two ``[G]`` tensors; ``prob.sum()`` is the quantizer's
    ``prob_perplexity`` for the same frames (same formula, fairseq's 1e-7).

    >>> prob, code = group_perplexities(torch.zeros(6, 2, 4))
    >>> prob.round(decimals=4).tolist(), code.round(decimals=4).tolist()  # uniform; argmax: entry 0
    ([4.0, 4.0], [1.0, 1.0])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be [frames, groups, entries], got {tuple(logits.shape)}")
    logits = logits.detach().float()
    soft = torch.softmax(logits, dim=-1)
    hard = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    prob = torch.stack([perplexity(soft[:, g:g + 1]) for g in range(logits.shape[1])])
    code = torch.stack([perplexity(hard[:, g:g + 1]) for g in range(logits.shape[1])])
    return prob, code


def _devices(model):
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


@torch.no_grad()
def validation_statistics(model, batches, seed=0):
    """Validation accuracy, loss and per-codebook perplexities of ``model``
    (a contrastive pre-training model with a ``quantizer``).

    Arguments
    ---------
    model : torch.nn.Module
        Called as ``model(wav, wav_lens)``, returning ``loss``, ``accuracy``
        and ``time_mask`` (``Wav2Vec2ContrastiveModel``); run in eval mode
        (argmax quantization, no dropout), restored afterwards.
    batches : iterable
        ``wav [B, S]`` or ``(wav, wav_lens)`` per batch (cropped as the
        recipe crops them).
    seed : int
        Batch ``i`` runs under ``torch.manual_seed(seed + i)``: the same
        masks and negatives at every checkpoint.

    Returns
    -------
    dict
        ``accuracy``, ``loss`` (means over masked frames), ``num_masked``,
        ``num_batches``; per group ``g``: ``perplexity_g`` (softmax, mean
        over batches), ``code_perplexity_g`` (argmax, mean over batches),
        ``pooled_perplexity_g`` (softmax pooled over all masked frames), and
        the similarities ``similarity_mean_g`` / ``_min_g`` / ``_max_g``
        (``g`` from 0: the paper's "codebook 1" is group 0);
        ``pooled_perplexity``: the sum over groups of the pooled ones.

    Example
    -------
    >>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    >>> from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel
    >>> model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5,
    ...                                  codevector_dim=32, final_dim=16, num_vars=8)
    >>> stats = validation_statistics(model, [torch.randn(2, 8000), torch.randn(2, 6000)])
    >>> sorted(k for k in stats if k.startswith("perplexity_"))
    ['perplexity_0', 'perplexity_1']
    >>> 0.0 <= stats["accuracy"] <= 1.0, 1.0 <= stats["perplexity_0"] <= 8.0
    (True, True)
    """
    quantizer = find_quantizer(model)
    groups, num_vars = quantizer.num_groups, quantizer.num_vars
    captured = []
    # the logits of exactly the frames the objective quantizes (the masked ones)
    hook = quantizer.weight_proj.register_forward_hook(
        lambda module, args, output: captured.append(output.detach().float()))
    was_training = model.training
    model.eval()
    frames = correct = loss_sum = 0.0
    prob_sum = torch.zeros(groups, dtype=torch.float64)
    code_sum = torch.zeros(groups, dtype=torch.float64)
    pooled = torch.zeros(groups, num_vars, dtype=torch.float64)
    count = 0
    try:
        for i, batch in enumerate(batches):
            wav, wav_lens = batch if isinstance(batch, (tuple, list)) else (batch, None)
            captured.clear()
            with torch.random.fork_rng(devices=_devices(model)):
                torch.manual_seed(seed + i)
                out = model(wav, wav_lens)
            if len(captured) != 1:
                raise RuntimeError(f"expected one quantizer call per batch, saw {len(captured)}")
            logits = captured[0].view(-1, groups, num_vars).cpu()
            masked = float(out["time_mask"].sum())
            frames += masked
            correct += float(out["accuracy"]) * masked
            # per masked frame whatever the model's loss_reduction (a sum-reduced
            # loss already carries the frame count)
            per_frame = float(out["loss"]) / (masked if getattr(model, "loss_reduction", "mean") == "sum" else 1)
            loss_sum += per_frame * masked
            prob, code = group_perplexities(logits)
            prob_sum += prob.double()
            code_sum += code.double()
            pooled += torch.softmax(logits, dim=-1).double().sum(0)
            count += 1
    finally:
        hook.remove()
        model.train(was_training)
    if count == 0:
        raise ValueError("no validation batch")
    stats = {"accuracy": correct / frames, "loss": loss_sum / frames, "num_masked": int(frames),
             "num_batches": count}
    pooled_ppl = perplexity((pooled / frames).float()[None])  # one "frame": the pooled average
    for g in range(groups):
        stats[f"perplexity_{g}"] = float(prob_sum[g] / count)
        stats[f"code_perplexity_{g}"] = float(code_sum[g] / count)
        stats[f"pooled_perplexity_{g}"] = float(
            perplexity((pooled[g] / frames).float()[None, None]))
    stats["pooled_perplexity"] = float(pooled_ppl)
    for g, similarity in enumerate(codebook_similarity(quantizer)):
        for key, value in similarity.items():
            stats[f"similarity_{key}_{g}"] = value
    return stats


def codebook_statistics_over_checkpoints(checkpoints, model, batches, csv_path, figure_path=None,
                                         x="updates", seed=0):
    """Fig. 1 D-I at every checkpoint: a CSV (one row per checkpoint:
    ``run, updates, hours_seen`` and :func:`validation_statistics`) and a
    figure (accuracy, each codebook's perplexity, each codebook's mean / min /
    max similarity; one curve per run).

    ``checkpoints``: ``CheckpointRef`` s
    (``speechbrain_ext.analysis.gradient_variance.run_checkpoints``);
    ``model``: a module, dict run -> module, or ``ref -> module``;
    ``batches``: the validation batches (the same for every checkpoint).
    Returns the rows.

    >>> import tempfile
    >>> from speechbrain_ext.analysis.gradient_variance import CheckpointRef
    >>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    >>> from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel
    >>> model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5,
    ...                                  codevector_dim=32, final_dim=16, num_vars=8)
    >>> refs = [CheckpointRef("5min", step, state_dict=model.state_dict()) for step in (0, 100)]
    >>> folder = tempfile.mkdtemp()
    >>> rows = codebook_statistics_over_checkpoints(refs, model, [torch.randn(2, 8000)],
    ...                                             folder + "/cb.csv", folder + "/cb.png")
    >>> [row["updates"] for row in rows], rows[0]["accuracy"] == rows[1]["accuracy"]
    ([0, 100], True)
    """
    rows = []
    for ref in checkpoints:
        net = load_checkpoint(ref, model_for(model, ref))
        stats = validation_statistics(net, batches, seed=seed)
        rows.append({"run": ref.run, "updates": ref.updates, "hours_seen": ref.hours_seen, **stats,
                     "checkpoint": "" if ref.path is None else str(ref.path)})
        logger.info(f"{ref.run} @ {ref.updates}: accuracy {stats['accuracy']:.3f}")
    write_rows(rows, csv_path, ["run", "updates", "hours_seen", "accuracy", "loss"])
    if figure_path is not None:
        plot_codebook_statistics(rows, figure_path, x=x)
    return rows


def plot_codebook_statistics(rows, figure_path, x="updates"):
    """Panels as in paper 001's Fig. 1 D-I (accuracy, each codebook's
    perplexity, each codebook's mean / min / max similarity) for every group
    in ``rows`` (:func:`codebook_statistics_over_checkpoints`'s), one curve
    per run; saved to ``figure_path``.

    >>> import tempfile
    >>> rows = [{"run": "a", "updates": u, "accuracy": 0.1 * u, "perplexity_0": 2.0,
    ...          "similarity_mean_0": 0.5, "similarity_min_0": 0.1, "similarity_max_0": 0.9}
    ...         for u in (0, 1)]
    >>> len([ax for ax in plot_codebook_statistics(rows, tempfile.mkdtemp() + "/f.png").axes
    ...      if ax.get_visible()])
    5
    """
    from matplotlib.figure import Figure

    groups = sorted(int(k.rsplit("_", 1)[1]) for k in (rows[0] if rows else {})
                    if k.startswith("perplexity_"))
    panels = [("accuracy", "validation accuracy")]
    panels += [(f"perplexity_{g}", f"perplexity of codebook {g + 1}") for g in groups]
    for g in groups:
        panels += [(f"similarity_{k}_{g}", f"{k} cosine similarity, codebook {g + 1}")
                   for k in ("mean", "min", "max")]
    columns = 3
    lines = max(1, math.ceil(len(panels) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.2 * lines))
    axes = figure.subplots(lines, columns, squeeze=False).flatten()
    for ax, (key, label) in zip(axes, panels):
        plot_curves(rows, None, key, x=x, ylabel=label, ax=ax)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.tight_layout()
    Path(figure_path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(figure_path)
    return figure
