"""Batches sized in seconds of audio.

``DurationBatchSampler`` fills each batch with pieces of similar length until
the next piece would exceed the budget, so that every batch holds the
requested seconds within one piece. SpeechBrain's ``DynamicBatchSampler``
caps each length bucket at ``max_batch_length / upper_boundary`` pieces; with
its default log-normal boundaries the lowest boundary is 3.6 % of the budget
(20 buckets), so pieces of a fixed-length split all land in the first bucket
and batches stop growing at 28 pieces whatever the budget (160, 320 and 640 s
of 5 s pieces all gave 140 s batches).

Example
-------
>>> wav = torch.arange(20.).view(2, 10)  # a batch cropped to its shortest clip at random offsets
>>> crop_to_shortest(wav, torch.tensor([1.0, 0.6]), torch.Generator().manual_seed(0)).shape
torch.Size([2, 6])
>>> sampler = DurationBatchSampler([5.0] * 10 + [3.0] * 4 + [2.0], max_batch_length=12, seed=0)
>>> sorted(sampler.batch_seconds())
[10.0, 10.0, 10.0, 10.0, 10.0, 12.0]
>>> sampler.dropped_pieces  # one 3 s piece left over: 3 s is not 12 s within one piece
1
"""
import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)


class DurationBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset indices whose durations sum to at most
    ``max_batch_length`` seconds and to more than ``max_batch_length`` minus
    the dataset's longest piece.

    Each epoch the pieces are shuffled (``seed + epoch``), grouped into at
    most ``num_buckets`` length buckets (quantiles of the durations) so that a
    batch holds pieces of similar length (little is lost when the recipe
    crops a batch to its shortest clip), and each bucket's pieces fill
    batches in their shuffled order. The partial batches the buckets leave
    are pooled, sorted by length and filled the same way; the last partial
    batch of the pool is kept only if it also holds the budget within one
    piece (``drop_last``), else its pieces are dropped for this epoch (they
    are others in the next one) and counted in ``dropped_pieces``.

    Arguments
    ---------
    durations : sequence of float
        Seconds of each dataset item, in dataset order.
    max_batch_length : float
        The budget in seconds per batch.
    num_buckets : int
        Length buckets (1: any lengths batched together).
    min_batch_size : int
        A batch with fewer pieces (only possible when pieces are longer than
        half the budget) is an error: the objective needs this many.
    shuffle : bool
        Shuffle pieces (and batch order) per epoch; else dataset order.
    seed : int
    drop_last : bool
        Drop the pool's last batch when it holds less than the budget minus
        one piece (default); ``False`` keeps it (fine-tuning: every labelled
        utterance every epoch).
    allow_oversized : bool
        An item longer than the budget is an error (default), or a batch of
        its own (fine-tuning on whole utterances).
    """

    def __init__(self, durations, max_batch_length, num_buckets=20, min_batch_size=1,
                 shuffle=True, seed=0, drop_last=True, allow_oversized=False):
        self.durations = [float(d) for d in durations]
        self.max_batch_length = float(max_batch_length)
        if not self.durations:
            raise ValueError("DurationBatchSampler: the dataset is empty")
        longest = max(self.durations)
        if allow_oversized:
            longest = max([d for d in self.durations if d <= self.max_batch_length], default=longest)
        elif longest > self.max_batch_length:
            raise ValueError(f"a piece of {longest:.2f} s is longer than the batch budget "
                             f"max_batch_length={self.max_batch_length:g} s")
        self.longest = longest
        fits = int(self.max_batch_length // longest)
        if fits < min_batch_size:
            raise ValueError(f"batch budget {self.max_batch_length:g} s holds only {fits} pieces of "
                             f"{longest:.2f} s, fewer than min_batch_size={min_batch_size}")
        quantiles = np.quantile(self.durations, np.linspace(0, 1, num_buckets + 1)[1:-1])
        self.boundaries = np.unique(quantiles)
        self.buckets = np.searchsorted(self.boundaries, self.durations, side="left").tolist()
        self.min_batch_size = min_batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self._cache = None

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _fill(self, indices):
        """Greedy batches of ``indices`` in order, and the partial tail (one
        that does not hold the budget within one piece)."""
        batches, batch, total = [], [], 0.0
        for index in indices:
            length = self.durations[index]
            if batch and total + length > self.max_batch_length:
                batches.append(batch)
                batch, total = [], 0.0
            batch.append(index)
            total += length
        if batch and self._complete(batch):
            batches.append(batch)
            batch = []
        return batches, batch

    def _complete(self, batch):
        """Holds the budget within one piece."""
        return sum(self.durations[i] for i in batch) > self.max_batch_length - self.longest

    def batches(self):
        """This epoch's batches (lists of dataset indices)."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = (torch.randperm(len(self.durations), generator=generator).tolist()
                 if self.shuffle else list(range(len(self.durations))))
        members = [[] for _ in range(len(self.boundaries) + 1)]
        for index in order:
            members[self.buckets[index]].append(index)
        batches, leftovers = [], []
        for bucket in members:
            full, tail = self._fill(bucket)
            batches += full
            leftovers += tail
        leftovers.sort(key=lambda i: self.durations[i])
        full, tail = self._fill(leftovers)
        batches += full
        self.dropped_pieces = 0
        if tail and not self.drop_last:
            batches.append(tail)
        elif tail:
            self.dropped_pieces = len(tail)
        if self.shuffle:
            permutation = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[i] for i in permutation]
        self._cache = (self.epoch, batches)
        return batches

    def batch_seconds(self):
        """Seconds of audio in each of this epoch's batches."""
        return [sum(self.durations[i] for i in batch) for batch in self.batches()]

    def __iter__(self):
        return iter(self.batches())

    def __len__(self):
        return len(self.batches())


def crop_to_shortest(wav, wav_lens, generator=None, max_samples=None):
    """Crop every waveform of a padded batch to the shortest one (and to at
    most ``max_samples``: fairseq's ``max_sample_size``), at a random offset
    inside its own valid part (fairseq's pre-training batches: no padding).
    ``wav`` ``[B, S]``, ``wav_lens`` ``[B]`` relative -> ``[B, S_min]``."""
    samples = torch.round(wav_lens.float() * wav.shape[1]).long().cpu()
    shortest = int(samples.min()) if max_samples is None else min(int(samples.min()), int(max_samples))
    spare = samples - shortest
    offsets = (torch.rand(len(samples), generator=generator) * (spare + 1).float()).long()
    index = offsets[:, None] + torch.arange(shortest)[None, :]
    return torch.gather(wav, 1, index.to(wav.device))
