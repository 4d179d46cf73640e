"""Random streams that make a training run reproducible across resumes and
distinct across processes.

Every random draw of a pre-training step (span masks, negatives, Gumbel
noise, dropout, crop offsets) comes from torch's global generator. Instead of
checkpointing that generator's state (one per process, gathered at every
save), the recipe reseeds it before every batch from a seed derived from
``(seed, process rank, stage, epoch, batch index)``. The epoch and batch index
are already in every checkpoint (SpeechBrain's epoch counter and the Brain's
step), so a run resumed from any checkpoint draws exactly what the
uninterrupted run drew, and two processes of a torchrun job never share a
stream. Python's and numpy's generators are reseeded too, for code outside
this package.

Example
-------
>>> a = stream_seed(1986, 0, "train", 1, 7)
>>> a == stream_seed(1986, 0, "train", 1, 7), a == stream_seed(1986, 1, "train", 1, 7)
(True, False)
>>> seed_all(a); x = torch.rand(2)
>>> seed_all(a); torch.equal(x, torch.rand(2))
True
"""
import hashlib
import os
import random

import numpy as np
import torch


def process_rank():
    """This process's rank in a torchrun job (0 without one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", 0))


def stream_seed(*keys):
    """A 63-bit seed that depends on every one of ``keys`` (ints / strings):
    nearby keys give unrelated seeds, unlike ``seed + step``."""
    digest = hashlib.sha256("/".join(str(key) for key in keys).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_all(seed):
    """Reseed torch (CPU and every CUDA device), numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def seed_batch(seed, stage, epoch, index):
    """Reseed every generator for batch ``index`` of ``stage`` ("train",
    "valid", ...) in ``epoch``, on this process (its rank is part of the key):
    what the recipes call before each batch.

    >>> seed_batch(1986, "train", 1, 7); x = torch.rand(2)
    >>> seed_batch(1986, "train", 1, 7); torch.equal(x, torch.rand(2))
    True
    """
    seed_all(stream_seed(seed, process_rank(), stage, epoch, index))


def mask_fingerprint(mask):
    """A short integer identifying a boolean mask ``[batch, frames]`` (with
    its shape), to compare the masks processes drew without sending them."""
    mask = mask.detach().to("cpu", torch.uint8)
    return stream_seed(tuple(mask.shape), hashlib.sha256(mask.numpy().tobytes()).hexdigest())
