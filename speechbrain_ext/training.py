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
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks

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
