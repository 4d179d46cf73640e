"""``DownstreamBrain``: the ``sb.Brain`` every downstream task subclasses.

It owns what all tasks share: the upstream (``modules.upstream``, an
``Upstream``) feeding a task head, two optimisers (the head's, and the
backbone's when unfrozen), checkpointing of the trainable parts only,
logging of the feature-cache use, best-checkpoint selection on the task's
metric, and writing the result record.

A task subclass overrides
* ``compute_forward(batch, stage)`` (default: ``modules.head(feats, lens)``
  on ``self.upstream_features(batch)``),
* ``compute_objectives(predictions, batch, stage)`` (required), updating
  its metric trackers,
* ``make_metrics(stage)`` -> ``{name: tracker}`` (built at each stage start,
  kept in ``self.metrics``) and ``stage_stats(stage)`` -> ``{name: float}``;
  the stat named by ``hparams.metric`` (in percent) is the task's result.

hparams it reads: ``task`` (a key of ``results.TASKS``), ``metric``,
``backbone`` (the checkpoint, for the record), ``freeze``, ``head_opt_class``,
``upstream_opt_class`` (unfrozen), optional ``label`` (row name in the
table), ``results_file``, ``train_logger``, ``lr_annealing_head`` /
``lr_annealing_upstream`` (SpeechBrain schedulers called with the valid
loss), ``checkpoints_to_keep``.

Example
-------
>>> import tempfile, torch, speechbrain as sb
>>> from speechbrain_ext.models.registry import save_backbone
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
>>> from speechbrain_ext.downstream.upstream import Upstream
>>> path = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tempfile.mkdtemp() + "/b.ckpt")
>>> class Toy(DownstreamBrain):
...     def compute_objectives(self, predictions, batch, stage):
...         return predictions.pow(2).mean()
>>> upstream = Upstream(path, freeze=False)
>>> brain = Toy(modules={"upstream": upstream, "head": MeanPoolClassifier(64, 3, proj_dim=0)},
...             hparams={"head_opt_class": lambda p: torch.optim.Adam(p, 1e-3),
...                      "upstream_opt_class": lambda p: torch.optim.Adam(p, 1e-5)})
>>> brain.init_optimizers()
>>> sorted(brain.optimizers_dict)
['head', 'upstream']
"""
import collections
import logging

import speechbrain as sb
import torch
from speechbrain.nnet.schedulers import update_learning_rate
from speechbrain.utils.distributed import if_main_process

from speechbrain_ext.downstream.results import (append_result, higher_is_better,
                                                pretraining_device_hours, pretraining_hours)
from speechbrain_ext.training.distributed import unwrap

logger = logging.getLogger(__name__)


def masked_mean(feats, lens):
    """Mean over the valid frames: ``feats`` ``[B, T, D]``, ``lens`` ``[B]``
    relative -> ``[B, D]``.

    >>> masked_mean(torch.tensor([[[1.0], [3.0], [100.0]]]), torch.tensor([2 / 3]))
    tensor([[2.]])
    """
    frames = torch.round(lens * feats.shape[1]).clamp(min=1)
    mask = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]
    return (feats * mask[..., None]).sum(dim=1) / frames[:, None].to(feats.dtype)


class MeanPool(torch.nn.Module):
    """``[B, T, D]`` + relative lengths -> ``[B, D]`` masked mean (a module,
    so it can sit in a YAML ``Sequential``-free head)."""

    def forward(self, feats, lens):
        return masked_mean(feats, lens)


class MeanPoolClassifier(torch.nn.Module):
    """SUPERB's utterance classifier (KS, ER): Linear projection, masked mean
    over time, Linear to the classes (paper 003: "mean-pooling followed by a
    linear layer").

    Arguments
    ---------
    input_dim : int
        Upstream feature size.
    num_classes : int
    proj_dim : int
        Size of the projection before pooling (s3prl: 256); 0 pools the
        upstream features directly.

    Example
    -------
    >>> head = MeanPoolClassifier(64, 12, proj_dim=16)
    >>> head(torch.randn(3, 20, 64), torch.tensor([1.0, 0.5, 0.25])).shape
    torch.Size([3, 12])
    """

    def __init__(self, input_dim, num_classes, proj_dim=256):
        super().__init__()
        self.projector = torch.nn.Linear(input_dim, proj_dim) if proj_dim else torch.nn.Identity()
        self.classifier = torch.nn.Linear(proj_dim or input_dim, num_classes)

    def forward(self, feats, lens):
        """``feats`` ``[B, T, D]``, ``lens`` ``[B]`` relative -> logits ``[B, classes]``."""
        return self.classifier(masked_mean(self.projector(feats), lens))


class DownstreamBrain(sb.Brain):
    """Upstream + task head (see the module docstring)."""

    def __init__(self, modules=None, opt_class=None, hparams=None, run_opts=None,
                 checkpointer=None):
        super().__init__(modules=modules, opt_class=opt_class, hparams=hparams,
                         run_opts=run_opts, checkpointer=checkpointer)
        if "upstream" not in self.modules:
            raise ValueError("DownstreamBrain needs modules['upstream'] (an Upstream)")
        self.metrics = {}
        self.eval_split = "test"
        if self.checkpointer is not None:
            # trainable parts only: a frozen backbone is the checkpoint it came from
            for name, module in self.modules.items():
                if name == "upstream":
                    if module.layer_sum is not None:
                        self.checkpointer.add_recoverable("layer_sum", module.layer_sum)
                    if not module.freeze:
                        self.checkpointer.add_recoverable("backbone", module.backbone)
                else:
                    self.checkpointer.add_recoverable(name, module)

    # -- optimisation ------------------------------------------------------

    @property
    def upstream(self):
        return unwrap(self.modules.upstream)

    def init_optimizers(self):
        """``head`` optimises every trainable parameter but the backbone's
        (the weighted-sum scalars included); ``upstream`` the backbone's,
        unfrozen only."""
        backbone = {id(p) for p in self.upstream.backbone.parameters()}
        head_params = [p for p in self.modules.parameters()
                       if p.requires_grad and id(p) not in backbone]
        if not head_params:
            raise ValueError("the task head has no trainable parameters")
        self.optimizers_dict = {"head": self.hparams.head_opt_class(head_params)}
        upstream_params = self.upstream.backbone_parameters()
        if upstream_params:
            self.optimizers_dict["upstream"] = self.hparams.upstream_opt_class(upstream_params)
        self.optimizer = self.optimizers_dict["head"]
        if self.checkpointer is not None:
            for name, opt in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(f"{name}_optimizer", opt)

    # -- forward -----------------------------------------------------------

    def upstream_features(self, batch):
        """Upstream features of ``batch.sig``: (``[B, T, D]``, relative
        lengths ``[B]``); utterance ids go along for the feature cache."""
        wav, wav_lens = batch.sig
        return self.modules.upstream(wav, wav_lens, ids=list(batch.id))

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        feats, lens = self.upstream_features(batch)
        return self.modules.head(feats, lens)

    # -- metrics and results ----------------------------------------------

    def make_metrics(self, stage):
        """Metric trackers for a stage (override): ``{name: tracker}``."""
        return {}

    def stage_stats(self, stage):
        """Summaries of ``self.metrics`` (override): ``{name: float}``."""
        return {}

    @property
    def metric_key(self):
        return self.hparams.metric

    def on_stage_start(self, stage, epoch=None):
        self.metrics = self.make_metrics(stage)
        self.upstream.reset_cache_stats()

    def log_cache_use(self, stage):
        upstream = self.upstream
        if upstream.cache is not None and upstream.cache_hits + upstream.cache_misses:
            logger.info(f"{stage.name.lower()}: feature cache used: {upstream.cache_hits} "
                        f"utterances read from {upstream.cache.folder}, "
                        f"{upstream.cache_misses} computed by the backbone and stored")

    def on_stage_end(self, stage, stage_loss, epoch=None):
        self.log_cache_use(stage)
        stats = {"loss": stage_loss, **self.stage_stats(stage)}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        if stage == sb.Stage.VALID:
            lrs = {}
            for name in ("head", "upstream"):
                scheduler = getattr(self.hparams, f"lr_annealing_{name}", None)
                if scheduler is not None and name in self.optimizers_dict:
                    _, new_lr = scheduler(stage_loss)
                    update_learning_rate(self.optimizers_dict[name], new_lr)
                if name in (self.optimizers_dict or {}):
                    lrs[f"lr_{name}"] = self.optimizers_dict[name].param_groups[0]["lr"]
            if hasattr(self.hparams, "train_logger"):
                self.hparams.train_logger.log_stats(
                    stats_meta={"epoch": epoch, "steps": self.optimizer_step, **lrs},
                    train_stats=getattr(self, "train_stats", None), valid_stats=stats)
            if self.checkpointer is not None:
                key = {"max_keys" if higher_is_better(self.metric_key) else "min_keys":
                       [self.metric_key]}
                self.checkpointer.save_and_keep_only(
                    meta={k: float(v) for k, v in stats.items()},
                    num_to_keep=getattr(self.hparams, "checkpoints_to_keep", 1), **key)
            return
        if hasattr(self.hparams, "train_logger"):
            self.hparams.train_logger.log_stats(
                stats_meta={"split": self.eval_split, "steps": self.optimizer_step},
                test_stats=stats)
        self.test_stats = stats
        chance = {"chance": stats["chance"]} if "chance" in stats else {}
        self.write_result(self.metric_key, stats[self.metric_key], self.eval_split, **chance)

    def write_result(self, metric, value, split, **extra):
        """Append a record to ``hparams.results_file`` (main process only)."""
        results_file = getattr(self.hparams, "results_file", None)
        if results_file is None or not if_main_process():
            return None
        backbone = self.upstream.source
        return append_result(
            results_file, task=self.hparams.task, metric=metric, value=value, split=split,
            backbone=("random:" if self.upstream.random_init else "") + backbone,
            label=getattr(self.hparams, "label", None), frozen=self.upstream.freeze,
            steps=self.optimizer_step, seed=getattr(self.hparams, "seed", None),
            pretrain_hours=None if self.upstream.random_init else pretraining_hours(backbone),
            **{f"pretrain_{k}": v for k, v in ({} if self.upstream.random_init
                                               else pretraining_device_hours(backbone)).items()},
            **extra)

    def evaluate_best(self, test_set, split="test", loader_kwargs=None):
        """Evaluate the checkpoint best on the valid metric and write the
        result for ``split``; returns the stats."""
        self.eval_split = split
        key = {"max_key" if higher_is_better(self.metric_key) else "min_key": self.metric_key}
        self.evaluate(test_set, test_loader_kwargs=loader_kwargs or {}, **key)
        return self.test_stats


class XvectorClassifier(torch.nn.Module):
    """x-vector head (SID, ASV): ``embedding_model`` (e.g.
    ``speechbrain.lobes.models.Xvector.Xvector``: TDNN + statistics pooling)
    then ``classifier`` on the ``[B, E]`` embedding.

    Example
    -------
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> head = XvectorClassifier(Xvector(in_channels=8, tdnn_channels=[16] * 4 + [32], lin_neurons=12),
    ...                          torch.nn.Linear(12, 5))
    >>> head(torch.randn(2, 30, 8), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 5])
    >>> head.embed(torch.randn(2, 30, 8), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 12])
    """

    def __init__(self, embedding_model, classifier):
        super().__init__()
        self.embedding_model = embedding_model
        self.classifier = classifier

    def embed(self, feats, lens):
        """``[B, T, D]`` + relative lengths -> embeddings ``[B, E]``."""
        return self.embedding_model(feats, lens).squeeze(1)

    def forward(self, feats, lens):
        """``[B, T, D]`` + relative lengths -> logits ``[B, classes]``."""
        scores = self.classifier(self.embed(feats, lens))
        return scores.squeeze(1) if scores.dim() == 3 else scores


class ClassificationBrain(DownstreamBrain):
    """One label per utterance (KWS, ER, SID, ASV training): the head
    returns logits ``[B, classes]``, the batch carries ``<label_key>_encoded``;
    cross-entropy unless ``hparams.compute_cost(logits [B, 1, C], targets
    [B, 1])`` is given (e.g. AM-softmax); ``acc`` in percent."""

    def targets(self, batch):
        return getattr(batch, f"{self.hparams.label_key}_encoded").data.flatten().to(self.device)

    def compute_objectives(self, logits, batch, stage):
        targets = self.targets(batch)
        if hasattr(self.hparams, "compute_cost"):
            loss = self.hparams.compute_cost(logits.unsqueeze(1), targets.unsqueeze(1))
        else:
            loss = torch.nn.functional.cross_entropy(logits, targets)
        self.metrics["correct"] += int((logits.argmax(dim=-1) == targets).sum())
        self.metrics["total"] += len(targets)
        if stage != sb.Stage.TRAIN:  # chance is reported for evaluations; no host copy per training step
            self.metrics["per_class"].update(targets.tolist())
        return loss

    def make_metrics(self, stage):
        return {"correct": 0, "total": 0, "per_class": collections.Counter()}

    def stage_stats(self, stage):
        """``acc`` and ``chance`` (percent): the share of the split's most
        frequent class, what always answering that class would score."""
        total = self.metrics["total"]
        if not total:
            return {}
        stats = {"acc": 100.0 * self.metrics["correct"] / total}
        if self.metrics["per_class"]:  # a subclass that counts its own way may not fill it
            stats["chance"] = 100.0 * max(self.metrics["per_class"].values()) / total
        return stats
