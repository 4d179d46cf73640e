"""Pieces every training recipe shares: batch cropping, counting the audio
seen, saving the backbone into each SpeechBrain checkpoint, DDP helpers.

Example
-------
>>> import torch
>>> wav = torch.arange(20.).view(2, 10)
>>> cropped = crop_to_shortest(wav, torch.tensor([1.0, 0.6]), torch.Generator().manual_seed(0))
>>> cropped.shape
torch.Size([2, 6])
"""
import logging
from pathlib import Path

import torch
import shutil

from speechbrain.utils.checkpoints import (Checkpointer, mark_as_loader, mark_as_saver,
                                           register_checkpoint_hooks)
from speechbrain.utils.distributed import if_main_process

from .backbone import save_backbone

logger = logging.getLogger(__name__)


def unwrap(module):
    """The module inside DDP / DataParallel wrappers."""
    return getattr(module, "module", module)


def world_size():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def crop_to_shortest(wav, wav_lens, generator=None):
    """Crop every waveform of a padded batch to the shortest one, at a random
    offset inside its own valid part (fairseq's pre-training batches: no
    padding). ``wav`` ``[B, S]``, ``wav_lens`` ``[B]`` relative -> ``[B, S_min]``."""
    samples = torch.round(wav_lens.float() * wav.shape[1]).long().cpu()
    shortest = int(samples.min())
    spare = samples - shortest
    offsets = (torch.rand(len(samples), generator=generator) * (spare + 1).float()).long()
    index = offsets[:, None] + torch.arange(shortest)[None, :]
    return torch.gather(wav, 1, index.to(wav.device))


@register_checkpoint_hooks
class AudioCounter:
    """Seconds of audio consumed by training (all processes), checkpointed so
    that "hours seen" survives a resume."""

    def __init__(self):
        self.seconds = 0.0

    def add(self, seconds):
        """Add this process's ``seconds``; returns the total over processes."""
        value = torch.tensor(float(seconds), dtype=torch.float64)
        if world_size() > 1:
            torch.distributed.all_reduce(value)
        self.seconds += float(value)
        return float(value)

    @property
    def hours(self):
        return self.seconds / 3600

    @mark_as_saver
    def _save(self, path):
        Path(path).write_text(repr(self.seconds))

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        self.seconds = float(Path(path).read_text())


@register_checkpoint_hooks
class BackboneSaver:
    """Writes the backbone (``speechbrain_ext.load_backbone`` format) into
    every checkpoint as ``<key>.ckpt``; loading is done by the model's own
    recoverable, so this one only saves."""

    def __init__(self, get_backbone):
        self.get_backbone = get_backbone

    @mark_as_saver
    def _save(self, path):
        save_backbone(self.get_backbone(), path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        pass


class SafeCheckpointer(Checkpointer):
    """SpeechBrain's Checkpointer, safe against a kill during a save.

    SpeechBrain writes a checkpoint's meta file before its parameter files,
    so a process killed mid-save leaves a folder that looks complete and
    that a resume would pick. Here a checkpoint counts only once a
    ``COMPLETE`` marker is written after all its files; unmarked folders are
    ignored, and removed when the run recovers.
    """

    MARKER = "COMPLETE"

    def save_checkpoint(self, *args, **kwargs):
        checkpoint = super().save_checkpoint(*args, **kwargs)
        if checkpoint is not None and if_main_process():
            (Path(checkpoint.path) / self.MARKER).write_text("")
        return checkpoint

    def list_checkpoints(self):
        return [c for c in super().list_checkpoints() if (Path(c.path) / self.MARKER).is_file()]

    def recover_if_possible(self, *args, **kwargs):
        if if_main_process():
            for folder in Path(self.checkpoints_dir).glob("CKPT+*"):
                if folder.is_dir() and not (folder / self.MARKER).is_file():
                    logger.warning(f"removing incomplete checkpoint {folder} (interrupted save)")
                    shutil.rmtree(folder)
        return super().recover_if_possible(*args, **kwargs)


class MinimumBatchSizeSampler(torch.utils.data.Sampler):
    """Wraps a batch sampler (e.g. SpeechBrain's ``DynamicBatchSampler``,
    which leaves small remainder batches) and merges every batch smaller
    than ``min_size`` into its neighbour, so that objectives needing several
    utterances (the Barlow merging loss: 2) never see a smaller batch.

    >>> sampler = MinimumBatchSizeSampler([[0, 1, 2], [3], [4, 5]], min_size=2)
    >>> list(sampler), len(sampler)
    ([[0, 1, 2, 3], [4, 5]], 2)
    """

    def __init__(self, batch_sampler, min_size=2):
        self.batch_sampler = batch_sampler
        self.min_size = min_size

    def set_epoch(self, epoch):
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def _batches(self):
        merged = []
        for batch in self.batch_sampler:
            batch = list(batch)
            if merged and (len(batch) < self.min_size or len(merged[-1]) < self.min_size):
                merged[-1] = merged[-1] + batch
            else:
                merged.append(batch)
        if len(merged) > 1 and len(merged[-1]) < self.min_size:
            merged[-2] += merged.pop()
        return merged

    def __iter__(self):
        return iter(self._batches())

    def __len__(self):
        return len(self._batches())
