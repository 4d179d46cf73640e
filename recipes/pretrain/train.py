#!/usr/bin/env python3
"""Self-supervised pre-training of wav2vec2-style backbones.

One recipe for every objective: the YAML's ``model`` decides (contrastive
wav2vec2, the non-contrastive method of paper 000, or the sequentially
combined method: non-contrastive from a wav2vec2 checkpoint).

    python recipes/pretrain/train.py hparams/nc_5s.yaml --data_folder /data/LibriSpeech
    torchrun --nproc_per_node=8 recipes/pretrain/train.py hparams/w2v2_15s.yaml ...
    python recipes/pretrain/train.py hparams/nc_5s.yaml --overrides_file overrides/micro.yaml

Paths to the YAML and to ``--overrides_file`` may be given relative to the
current folder or to this recipe's folder. Batches are sized in seconds of
audio (``batch_seconds`` per process and step, held within one piece by
``speechbrain_ext.training.batching.DurationBatchSampler``); the effective batch is
``batch_seconds x grad_accumulation_factor x processes``, which the log states
beside the measured seconds per update.

Runs resume exactly: every random draw of a batch comes from a stream seeded
by ``(seed, process rank, epoch, batch)`` (``speechbrain_ext.training.random_streams``),
and interval checkpoints fall only between updates, never inside a gradient
accumulation. A batch whose loss is not finite (on any process) is skipped by
every process: no backward, no update, no audio counted; its utterance ids
are logged.

Paper 001's batch-size study (``hparams/paper001_*.yaml``) sets the batch
per *update* instead: ``seconds_per_update`` split over ``gpus`` x
``grad_accumulation_factor`` GPU batches of at most ``max_samples_per_gpu``
samples (checked before anything else runs; ``batch_seconds`` is then
derived, so it must be null), batches made by its sampler
(``sampler: paper001``: length bins, a priority queue, the 10 s rule),
padded rather than cropped (``crop_to_shortest: False``: padding is kept
out of the masks, the attention and the losses), optionally a random
``valid_holdout`` fraction of the training utterances as the validation
set, and Table 2's accounting (hours seen as an upper bound and measured,
epochs, the most repeats of any utterance) in every checkpoint's meta.
"""
import logging
import sys
import time
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.distributed import if_main_process, run_on_main

from data_prep.length_splits import csv_name, prepare_length_splits, verify_manifest
from data_prep.librispeech import prepare_librispeech
from speechbrain_ext.io.data import DATA_ROOT_KEY, DataPreparationError, read_piece
from speechbrain_ext.pretraining.objective import PretrainingObjective
from speechbrain_ext.training.batching import DurationBatchSampler, crop_to_shortest
from speechbrain_ext.training.checkpointing import BackboneSaver
from speechbrain_ext.training.distributed import sum_over_processes, unwrap, world_size
from speechbrain_ext.training.lr_heuristics import split_batch
from speechbrain_ext.training.paper001_batching import Paper001BatchSampler, SeenAccounting
from speechbrain_ext.training.random_streams import mask_fingerprint, seed_batch
from speechbrain_ext.training.recipe_cli import parse_arguments, resolve_path
from speechbrain_ext.training.schedules import set_learning_rate

logger = logging.getLogger(__name__)
RECIPE_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16000


def scalar_terms(outputs):
    """The model's scalar outputs (loss terms, accuracy, ...) as floats."""
    return {key: float(value.detach() if torch.is_tensor(value) else value)
            for key, value in outputs.items()
            if (torch.is_tensor(value) and value.numel() == 1) or isinstance(value, float)}


class PretrainBrain(sb.core.Brain):
    """Runs any pre-training objective whose module returns ``{"loss": ...}``."""

    seen = None  # a SeenAccounting (Table 2 of paper 001), set by main()

    def on_fit_start(self):
        super().on_fit_start()  # recovers the latest checkpoint, if any
        self.pending_batches = 0  # accumulated, not yet applied (0 at every checkpoint)
        self.skipped_ids = []
        model = unwrap(self.modules.model)
        model.set_num_updates(self.optimizer_step)
        self.monitor_key = model.monitor_key
        set_learning_rate(self.optimizer, self.hparams.lr_schedule(self.optimizer_step))
        self.hparams.device_clock.start()
        if self.optimizer_step == 0:  # where this run starts, stated once
            start = getattr(self.hparams, "init_from", None)
            logger.info(f"starting from the weights of {start} (init_from)" if start else
                        "starting from a random initialisation (seed "
                        f"{self.hparams.seed})")
        if self.optimizer_step > 0:
            logger.info(f"resumed from checkpoint at update {self.optimizer_step}, "
                        f"{self.hparams.audio_counter.hours:.3f} h of audio seen, "
                        f"{self.hparams.device_clock.hours:.3f} {self.device_kind} hours")
        logger.info(
            f"effective batch: {self.hparams.batch_seconds:g} s per process x "
            f"{self.grad_accumulation_factor} accumulation x {world_size()} processes = "
            f"{self.requested_seconds_per_update / 60:.2f} "
            f"min of audio per update ("
            + ("each GPU batch filled up to its budget, padded, not cropped)"
               if not self.hparams.crop_to_shortest else "before cropping to the shortest clip)"))

    @property
    def max_samples(self):
        """Crop limit of whole utterances (fairseq's max_sample_size); pieces
        and uncropped (padded) batches: none."""
        return (self.hparams.max_sample_size
                if self.hparams.pretrain_on == "utterances" and self.hparams.crop_to_shortest else None)

    @property
    def device_kind(self):
        return "GPU" if str(self.device).startswith("cuda") else "CPU"

    def device_hours(self):
        """``{gpu_hours, gpu_hours_per_1k_updates}`` (or ``cpu_...``) so far."""
        hours = self.hparams.device_clock.tick() / 3600
        kind = self.device_kind.lower()
        return {f"{kind}_hours": hours,
                f"{kind}_hours_per_1k_updates": 1000 * hours / max(self.optimizer_step, 1)}

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-", **loader_kwargs):
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)
        if stage == sb.Stage.VALID:  # for the validations between epoch ends
            self.valid_loader = loader
        return loader

    def checkpoint_due(self, update):
        """Validate and checkpoint after ``update`` (besides epoch ends)?
        Returns ``(due, keep for good)``."""
        hp = self.hparams
        keep = update in hp.keep_checkpoints_at or bool(
            hp.keep_every_updates and update % hp.keep_every_updates == 0)
        due = keep or bool(hp.valid_interval_updates and update % hp.valid_interval_updates == 0)
        return due, keep

    def validate_between_epochs(self, keep):
        """Validation and a checkpoint now, inside the epoch: the checkpoint
        is an intra-epoch one (a resume continues this epoch where it was)."""
        step, self.keep_this_checkpoint, self.end_of_epoch = self.step, keep, False
        # SpeechBrain's _fit_valid averages the loss over self.step, counted
        # from where it is: from the epoch's batch count, the average would
        # be divided by it too (an update-500 validation loss of 0.52, not 4.63)
        self.step = 0
        self.train_loss, self.train_seconds = self.avg_train_loss, self.seconds_per_update()
        self._fit_valid(self.valid_loader, self.hparams.epoch_counter.current,
                        enable=not self.noprogressbar)
        self.step, self.end_of_epoch = step, True  # _fit_valid zeroes the epoch's batch count
        self.modules.train()

    @property
    def requested_seconds_per_update(self):
        return self.hparams.batch_seconds * self.grad_accumulation_factor * world_size()

    def seed_batch(self, stage, index):
        """Reseed every generator for this batch (see module docstring)."""
        seed_batch(self.hparams.seed, stage, self.hparams.epoch_counter.current, index)

    def all_finite(self, loss):
        """Whether the loss is finite on every process (all must agree to skip)."""
        finite = torch.isfinite(loss.detach()).float().reshape(1)
        if world_size() > 1:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def fit_batch(self, batch):
        """SpeechBrain's ``fit_batch`` with two changes: a non-finite batch is
        skipped (no backward, not counted towards the accumulation, the update
        count or the audio seen), and the returned value (the progress bar's
        ``train_loss``) is the model's ``monitor_key`` term, which moves even
        where ``loss`` is constant (the dynamic Barlow loss is always 2)."""
        self.seed_batch("train", self.step)
        should_step = self.pending_batches + 1 >= self.grad_accumulation_factor
        with self.no_sync(not should_step):
            with self.training_ctx:
                outputs = self.compute_forward(batch, sb.Stage.TRAIN)
                loss = self.compute_objectives(outputs, batch, sb.Stage.TRAIN)
            if not self.all_finite(loss):
                self.skip_batch(batch, outputs)
                return torch.tensor(float("nan"))
            self.scaler.scale(loss / self.grad_accumulation_factor).backward()
        self.pending_batches += 1
        if should_step:
            self.optimizers_step()
            self.pending_batches = 0
        self.on_fit_batch_end(batch, outputs, loss, should_step)
        return outputs[self.monitor_key].detach().float().cpu()

    def skip_batch(self, batch, outputs):
        """Name the batch's utterances; stop after ``nonfinite_patience`` of them."""
        self.nonfinite_count += 1
        self.skipped_ids.extend(batch.id)
        logger.warning(f"non-finite loss at update {self.optimizer_step + 1} (on this or another "
                       f"process); batch skipped: utterances {', '.join(batch.id)}; "
                       f"terms {scalar_terms(outputs)}")
        if self.nonfinite_count > self.nonfinite_patience:
            raise ValueError(
                f"the loss was not finite in {self.nonfinite_count} batches this epoch "
                f"(nonfinite_patience={self.nonfinite_patience}); utterances of the skipped batches: "
                f"{', '.join(self.skipped_ids[:50])}{' ...' if len(self.skipped_ids) > 50 else ''}. "
                "Check these files for NaN / Inf samples (python -m data_prep.librispeech "
                "--full_decode) or lower the learning rate")

    def evaluate_batch(self, batch, stage):
        self.seed_batch(stage.name.lower(), self.valid_index)
        self.valid_index += 1
        return super().evaluate_batch(batch, stage)

    def _should_save_intra_epoch_ckpt(self, last_ckpt_time, steps_since_ckpt):
        # never inside an accumulation: its gradients are not checkpointed
        # (pending_batches is the same on every process)
        if self.pending_batches:
            return False
        return super()._should_save_intra_epoch_ckpt(last_ckpt_time, steps_since_ckpt)

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wav, wav_lens = batch.sig
        if self.hparams.crop_to_shortest:
            wav = crop_to_shortest(wav, wav_lens, max_samples=self.max_samples)
            wav_lens = None
            self.batch_audio_seconds = wav.shape[0] * wav.shape[1] / SAMPLE_RATE
        else:  # padded: the audio trained on is the unpadded part
            self.batch_audio_seconds = float((wav_lens * wav.shape[1]).round().sum()) / SAMPLE_RATE
        return self.modules.model(wav, wav_lens)

    def compute_objectives(self, outputs, batch, stage):
        loss = outputs["loss"]
        if stage == sb.Stage.VALID:  # every scalar term, averaged over the valid set
            for key, value in scalar_terms(outputs).items():
                self.valid_sums[key] = self.valid_sums.get(key, 0.0) + value
            self.valid_batches += 1
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.valid_sums, self.valid_batches, self.valid_index = {}, 0, 0
        if stage == sb.Stage.TRAIN:
            # seconds per update of this epoch: pieces as batched, and after cropping
            self.epoch_seconds = {"pieces": 0.0, "trained": 0.0, "updates": 0}
            self.keep_this_checkpoint, self.end_of_epoch = False, True

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        samples = torch.round(batch.sig[1] * batch.sig[0].shape[1])  # as the sampler counts them
        if self.max_samples is not None:
            samples = samples.clamp(max=self.max_samples)
        pieces = float(samples.sum()) / SAMPLE_RATE
        pieces, trained = sum_over_processes(pieces, self.batch_audio_seconds)
        self.hparams.audio_counter.add(trained)
        if self.seen is not None:
            self.seen.add(batch.id)
        self.epoch_seconds["pieces"] += pieces
        self.epoch_seconds["trained"] += trained
        if not should_step:
            return
        self.epoch_seconds["updates"] += 1
        model = unwrap(self.modules.model)
        model.after_optimizer_step(self.optimizer_step)
        lr = self.hparams.lr_schedule(self.optimizer_step)
        set_learning_rate(self.optimizer, lr)
        # every rank calls log_stats: SpeechBrain runs it on the main process and syncs
        if self.optimizer_step % self.hparams.log_interval == 0:
            stats = scalar_terms(outputs)
            stats.update(update=self.optimizer_step, lr=lr,
                         hours_seen=self.hparams.audio_counter.hours,
                         **self.seconds_per_update(), **self.device_hours())
            if world_size() > 1 and "time_mask" in outputs:
                stats["processes_with_equal_masks"] = equal_masks_across_processes(
                    outputs["time_mask"])
            self.hparams.train_logger.log_stats(stats_meta={"step": self.optimizer_step},
                                                train_stats=stats)
        due, keep = self.checkpoint_due(self.optimizer_step)
        if due and not self._optimizer_step_limit_exceeded:  # the last update: the epoch end's
            self.validate_between_epochs(keep)

    def seconds_per_update(self):
        """This epoch's mean seconds of audio per update (all processes), as
        batched and after cropping, beside the requested ones."""
        updates = max(self.epoch_seconds["updates"], 1)
        return {"seconds_per_update": self.epoch_seconds["pieces"] / updates,
                "trained_seconds_per_update": self.epoch_seconds["trained"] / updates,
                "requested_seconds_per_update": float(self.requested_seconds_per_update)}

    def on_stage_end(self, stage, stage_loss, epoch):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            self.train_seconds = self.seconds_per_update()
            sampler = getattr(self, "train_sampler", None)
            if getattr(sampler, "dropped_batches", 0):  # paper 001's 10 s rule
                logger.info(f"epoch {epoch}: {sampler.dropped_batches} batches "
                            f"({sampler.dropped_utterances} utterances) dropped, their longest and "
                            f"shortest utterances over {sampler.max_difference / SAMPLE_RATE:g} s apart")
            return
        stats = {key: total / max(self.valid_batches, 1) for key, total in self.valid_sums.items()}
        stats["loss"] = stage_loss
        if stage == sb.Stage.VALID:
            device = self.device_hours()
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "update": self.optimizer_step,
                            "hours_seen": round(self.hparams.audio_counter.hours, 5),
                            **{k: round(v, 6) for k, v in device.items()}},
                train_stats={self.monitor_key: self.train_loss, **self.train_seconds},
                valid_stats=stats)
            if self._optimizer_step_limit_exceeded:  # the run's last checkpoint is kept too
                self.keep_this_checkpoint |= self.checkpoint_due(self.optimizer_step)[1]
            # the term that compares runs (the dynamic Barlow loss is always 2);
            # checkpoints marked "keep" are never candidates for deletion
            monitor = self.monitor_key if self.monitor_key in stats else "loss"
            # Table 2 of paper 001 (every process takes part in the sum)
            table2 = ({} if self.seen is None else
                      self.seen.table2(self.optimizer_step, self.requested_seconds_per_update))
            self.checkpointer.save_and_keep_only(
                meta={**stats, "update": self.optimizer_step,
                      "hours_seen": self.hparams.audio_counter.hours, **device, **table2,
                      "keep": self.keep_this_checkpoint},
                end_of_epoch=self.end_of_epoch, min_keys=[monitor],
                num_to_keep=self.hparams.checkpoints_to_keep,
                ckpt_predicate=lambda c: not c.meta.get("keep", False))
            self.keep_this_checkpoint = False  # the next save (e.g. the epoch end's) decides anew


def equal_masks_across_processes(mask):
    """Pairs of processes whose span masks ``[batch, frames]`` of this step
    are identical (0 when every process has its own random stream)."""
    fingerprints = [None] * world_size()
    torch.distributed.all_gather_object(fingerprints, mask_fingerprint(mask))
    return sum(a == b for i, a in enumerate(fingerprints) for b in fingerprints[i + 1:])


def check_data_option(hparams):
    """Fail before training on a data option that does not exist."""
    if hparams["pretrain_on"] not in ("pieces", "utterances"):
        raise ValueError(f"pretrain_on must be 'pieces' (length splits) or 'utterances', "
                         f"got {hparams['pretrain_on']!r}")
    sampler = hparams.get("sampler", "duration")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if hparams["pretrain_on"] == "utterances" and not hparams["crop_to_shortest"] and sampler != "paper001":
        raise ValueError("pretrain_on: utterances needs crop_to_shortest: True (fairseq crops every "
                         "utterance to the batch's shortest and to max_sample_size), or sampler: "
                         "paper001, whose length-similar batches are padded (paper 001, Section 3.2)")
    holdout = hparams.get("valid_holdout")
    if holdout is not None and not (isinstance(holdout, float) and 0 < holdout < 1):
        raise ValueError(f"valid_holdout must be null or a fraction between 0 and 1, got {holdout!r}")


SAMPLERS = ("duration", "paper001")


def check_batch_split(hparams, processes):
    """Paper 001's batch per update: ``seconds_per_update`` must split into
    ``gpus`` x ``grad_accumulation_factor`` equal GPU batches (whole samples)
    of at most ``max_samples_per_gpu`` samples, ``gpus`` must be the number
    of processes running, and ``batch_seconds`` is then derived (it must be
    null). Sets ``hparams["batch_seconds"]``; returns the ``BatchSplit`` (None
    for a YAML that sets ``batch_seconds`` instead)."""
    seconds = hparams.get("seconds_per_update")
    if seconds is None:
        if hparams["batch_seconds"] is None:
            raise ValueError("set batch_seconds (per process and step) or seconds_per_update "
                             "(per update, paper 001): both are null")
        return None
    if hparams["batch_seconds"] is not None:
        raise ValueError(f"seconds_per_update={seconds} and batch_seconds={hparams['batch_seconds']} "
                         "are both set: batch_seconds is derived from seconds_per_update, gpus and "
                         "grad_accumulation_factor; set batch_seconds: null")
    keys = ("gpus", "grad_accumulation_factor", "max_samples_per_gpu")
    missing = [k for k in keys if hparams.get(k) is None]
    if missing:
        raise ValueError(f"seconds_per_update is set, so {', '.join(missing)} must be too")
    gpus, accumulation, budget = (hparams[k] for k in keys)
    where = (f"seconds_per_update={seconds:g} with gpus={gpus}, grad_accumulation_factor="
             f"{accumulation}, max_samples_per_gpu={budget}")
    try:
        split = split_batch(seconds, gpus, accumulation, budget, sample_rate=SAMPLE_RATE)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if gpus != processes:
        hint = ""
        for acc in range(1, 1025):
            try:
                split_batch(seconds, processes, acc, budget, sample_rate=SAMPLE_RATE)
            except ValueError:
                continue
            hint = f"; for the same batch on {processes} set --gpus={processes} --grad_accumulation_factor={acc}"
            break
        raise ValueError(f"{where}, but {processes} process(es) run{hint}")
    hparams["batch_seconds"] = split.seconds_per_gpu_batch
    return split


def check_retention(hparams):
    """Fail before training on a validation / retention setting that cannot work."""
    for key in ("valid_interval_updates", "keep_every_updates"):
        value = hparams[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{key} must be null or a positive number of updates, got {value!r}")
    keep = hparams["keep_checkpoints_at"]
    if not isinstance(keep, (list, tuple)) or not all(
            isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in keep):
        raise ValueError(f"keep_checkpoints_at must be a list of positive update numbers, got {keep!r}")
    if any(b <= a for a, b in zip(keep, keep[1:])):
        raise ValueError(f"keep_checkpoints_at must be strictly increasing, got {list(keep)}")


def check_split(csv_path, hparams, model):
    """Fail before training on a split the objective cannot use."""
    if not Path(csv_path).is_file():
        command = (f"python -m data_prep.length_splits --data_folder {hparams['data_folder']} "
                   f"--save_folder {Path(csv_path).parent} --lengths {hparams['split_length']}"
                   if hparams["pretrain_on"] == "pieces" else
                   f"python -m data_prep.librispeech --data_folder {hparams['data_folder']} "
                   f"--save_folder {Path(csv_path).parent} (merged as {Path(csv_path).name})")
        raise DataPreparationError(f"{csv_path} was not prepared; run\n  {command}\n"
                                   "or set skip_prep: False")
    import csv

    with open(csv_path) as f:
        durations = item_seconds(hparams, [float(row["duration"]) for row in csv.DictReader(f)])
    if not durations:
        raise DataPreparationError(f"{csv_path} holds no pieces (no utterance of at least "
                                   "min_sample_size samples)" if hparams["pretrain_on"] != "pieces"
                                   else f"{csv_path} holds no pieces")
    shortest = torch.tensor([int(min(durations) * SAMPLE_RATE)])
    frames = int(model.backbone.feature_extractor.output_lengths(shortest)[0])
    if frames < model.min_frames():
        raise ValueError(f"{csv_path}: the shortest piece ({min(durations):.2f} s, {frames} frames) "
                         f"is shorter than the mask span the objective needs ({model.min_frames()} frames)")
    per_batch = hparams["batch_seconds"] / max(durations)
    if hparams.get("min_batch_size", 1) > per_batch:
        raise ValueError(f"batch_seconds={hparams['batch_seconds']} holds only {per_batch:.1f} pieces of "
                         f"{max(durations):.1f} s, fewer than min_batch_size={hparams['min_batch_size']} "
                         "that the objective needs (the Barlow merging loss needs at least 2)")


UTTERANCES_CSV = "utterances"  # prepare_librispeech's merged manifest of the splits


def item_seconds(hparams, durations):
    """The seconds each item is trained on: pieces as they are; utterances
    at least ``min_sample_size`` long (the others are left out), cropped to
    ``max_sample_size`` (fairseq's audio_pretraining task), or, in padded
    batches (``crop_to_shortest: False``), whole, longer ones left out."""
    if hparams["pretrain_on"] == "pieces":
        return list(durations)
    low, high = hparams["min_sample_size"] / SAMPLE_RATE, hparams["max_sample_size"] / SAMPLE_RATE
    if not hparams["crop_to_shortest"]:
        return [d for d in durations if low <= d <= high]
    return [min(d, high) for d in durations if d >= low]


def manifest_path(hparams, stage):
    """The CSV a stage reads: the length split's pieces, or the utterances;
    with ``valid_holdout``, the training manifest's two parts."""
    name = csv_name(hparams["split_length"]) if hparams["pretrain_on"] == "pieces" else UTTERANCES_CSV + ".csv"
    if hparams.get("valid_holdout") is not None:
        return Path(hparams["train_prep_folder"]) / holdout_name(name, hparams, stage)
    return Path(hparams[f"{stage}_prep_folder"]) / name


def holdout_name(name, hparams, stage):
    """``utterances_valid_holdout0.05_seed0.csv``: the part, fraction and seed in the name."""
    return (f"{Path(name).stem}_{stage}_holdout{hparams['valid_holdout']:g}"
            f"_seed{hparams.get('valid_holdout_seed', 0)}.csv")


def write_holdout(hparams):
    """Paper 001, Section 4.1: a random ``valid_holdout`` fraction (5 %) of
    the training manifest's rows is the validation set, the rest trains;
    the same rows for a ``valid_holdout_seed`` whatever the run's seed (the
    runs of a study validate on one set). Written beside the manifest."""
    import csv

    import numpy as np

    source = Path(hparams["train_prep_folder"]) / (
        csv_name(hparams["split_length"]) if hparams["pretrain_on"] == "pieces" else UTTERANCES_CSV + ".csv")
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    count = int(round(hparams["valid_holdout"] * len(rows)))
    if count < 1 or count >= len(rows):
        raise ValueError(f"valid_holdout={hparams['valid_holdout']} of the {len(rows)} rows of {source} "
                         f"is {count} rows: both parts need at least one")
    rng = np.random.default_rng(hparams.get("valid_holdout_seed", 0))
    held = set(rng.permutation(len(rows))[:count].tolist())
    for stage, keep in (("train", lambda k: k not in held), ("valid", lambda k: k in held)):
        path = source.parent / holdout_name(source.name, hparams, stage)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(row for k, row in enumerate(rows) if keep(k))


def read_utterance(wav, duration):
    """A whole utterance, read with the checks of ``read_piece``."""
    return read_piece(f"{wav}:0:{int(round(float(duration) * SAMPLE_RATE))}")


def dataio_prep(hparams):
    """Train / valid datasets (length-split pieces or whole utterances) and
    the train sampler (sized by the seconds each item is cropped to)."""
    datasets = {}
    for stage in ("train", "valid"):
        dataset = DynamicItemDataset.from_csv(
            str(manifest_path(hparams, stage)), replacements={DATA_ROOT_KEY: str(hparams["data_folder"])})
        if hparams["pretrain_on"] == "pieces":
            dataset.add_dynamic_item(read_piece, takes="segments", provides="sig")
        else:  # fairseq's min_sample_size: shorter utterances are left out
            limits = {"key_min_value": {"duration": hparams["min_sample_size"] / SAMPLE_RATE}}
            if not hparams["crop_to_shortest"]:  # whole in padded batches: longer ones left out
                limits["key_max_value"] = {"duration": hparams["max_sample_size"] / SAMPLE_RATE}
            dataset = dataset.filtered_sorted(**limits, sort_key=None)
            dataset.add_dynamic_item(read_utterance, takes=["wav", "duration"], provides="sig")
        dataset.set_output_keys(["id", "sig"])
        datasets[stage] = dataset
    train = datasets["train"]
    seconds = item_seconds(hparams, [float(train.data[i]["duration"]) for i in train.data_ids])
    if hparams.get("sampler", "duration") == "paper001":
        sampler = Paper001BatchSampler(
            seconds, max_samples=int(round(hparams["batch_seconds"] * SAMPLE_RATE)),
            sample_rate=SAMPLE_RATE, bin_size=hparams["bin_size"], queue_size=hparams["queue_size"],
            max_length_difference=hparams["max_length_difference"], padded=hparams["budget_padded"],
            seed=hparams["seed"])
    else:
        sampler = DurationBatchSampler(
            seconds, max_batch_length=hparams["batch_seconds"], num_buckets=hparams["num_buckets"],
            min_batch_size=hparams["min_batch_size"], seed=hparams["seed"])
    return datasets, sampler


def main(argv=None):
    # one overrides/micro.yaml serves every pre-training YAML: its keys that a
    # YAML lacks (ema_decay, lr_decay_steps for the contrastive ones) are dropped
    hparams_file, run_opts, overrides = parse_arguments(sys.argv[1:] if argv is None else argv,
                                                        RECIPE_DIR, skip_unknown_file_keys=True)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as f:
        hparams = load_hyperpyyaml(f, overrides)
    check_retention(hparams)
    check_data_option(hparams)
    # the Brain takes a command-line --grad_accumulation_factor over the YAML's: so does the check
    if "grad_accumulation_factor" in getattr(run_opts, "overridden_args", ()):
        hparams["grad_accumulation_factor"] = run_opts["grad_accumulation_factor"]
    check_batch_split(hparams, world_size())
    hparams["data_folder"] = str(resolve_path(hparams["data_folder"], [RECIPE_DIR]))
    if not Path(hparams["data_folder"]).is_dir():
        raise DataPreparationError(f"data_folder {hparams['data_folder']} does not exist "
                                   "(expected the LibriSpeech folder holding the train splits)")
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    for stage in ("train", "valid"):
        if hparams["pretrain_on"] == "pieces":
            run_on_main(prepare_length_splits, kwargs={
                "data_folder": hparams["data_folder"], "save_folder": hparams[f"{stage}_prep_folder"],
                "lengths": [hparams["split_length"]], "splits": hparams[f"{stage}_splits"],
                "skip_prep": hparams["skip_prep"]})
        else:
            run_on_main(prepare_librispeech, kwargs={
                "data_folder": hparams["data_folder"], "save_folder": hparams[f"{stage}_prep_folder"],
                "splits": hparams[f"{stage}_splits"], "merge_name": UTTERANCES_CSV,
                "skip_prep": hparams["skip_prep"]})
        if hparams.get("valid_holdout") is not None:  # validation: part of the training set
            run_on_main(write_holdout, args=[hparams])
            break
    model = hparams["model"]
    if not isinstance(model, PretrainingObjective):
        raise TypeError(f"model: {type(model).__name__} is not a pre-training objective (it needs "
                        "forward, backbone, monitor_key, min_frames, set_num_updates and "
                        "after_optimizer_step: speechbrain_ext.pretraining.objective)")
    check_split(manifest_path(hparams, "train"), hparams, model)
    # files damaged since preparation are named now, not mid-training (headers
    # and the last frames each piece needs: seconds for LS-960)
    for stage in ("train", "valid"):
        run_on_main(verify_manifest, kwargs={
            "csv_path": manifest_path(hparams, stage),
            "data_folder": hparams["data_folder"], "progress": False})
    datasets, sampler = dataio_prep(hparams)

    hparams["checkpointer"].add_recoverable(
        "backbone", BackboneSaver(lambda: unwrap(brain.modules.model).backbone,
                                  hparams["audio_counter"], lambda: brain.optimizer_step,
                                  lambda: brain.device_hours()))
    seen = None
    if hparams.get("table2_accounting", False):  # before the brain recovers a checkpoint
        train = datasets["train"]
        seen = SeenAccounting()
        # each utterance's length without padding (cropped to max_sample_size where the batches are)
        seen.bind(train.data_ids, item_seconds(hparams, [float(train.data[i]["duration"])
                                                         for i in train.data_ids]))
        hparams["checkpointer"].add_recoverable("seen_utterances", seen)
    brain = PretrainBrain(modules={"model": model}, opt_class=hparams["opt_class"],
                          hparams=hparams, run_opts=run_opts, checkpointer=hparams["checkpointer"])
    brain.seen, brain.train_sampler = seen, sampler
    start = time.time()
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs={"batch_sampler": sampler, "num_workers": hparams["num_workers"]},
                valid_loader_kwargs={"batch_size": hparams["valid_batch_size"], "drop_last": True})
    if if_main_process():
        device = brain.device_hours()
        logger.info(f"pre-training done: {brain.optimizer_step} updates, "
                    f"{hparams['audio_counter'].hours:.3f} h of audio seen, {time.time() - start:.0f} s "
                    f"({', '.join(f'{k} {v:.4f}' for k, v in device.items())})")
    return brain


if __name__ == "__main__":
    main()
