"""The batch-size study's gpu-batches (paper 001, Section 3.2 and A.1).

The paper's recipe: the utterances are sorted by length and put into bins
of 5000; every gpu-batch comes from one bin; random samples of the bin feed
a priority queue of 50, from which the batch takes the shortest first until
the budget (2.4 M samples; 1.4 M at 87.5 s per update) is reached; a batch
whose longest and shortest utterances differ by more than 10 s is
discarded (it caused CUDA out-of-memory errors), so Table 2's measured hours
are below the upper bound ``updates x batch size``.

:class:`Paper001BatchSampler` does this for one epoch at a time, the same
batches for the same ``(seed, epoch)`` in every process. Per bin:

1. the bin's utterances in a random order (``rng.permutation``) are pushed
   one by one into a min-heap keyed by length; once the heap holds
   ``queue_size`` of them, every push is followed by a pop of the shortest
   (then the heap is drained, shortest first, when the bin is exhausted);
2. each popped utterance joins the open batch unless that would take the
   batch over ``max_samples``: then the open batch is closed and the
   utterance opens the next one; the bin's last open batch is closed at the
   end of the bin (batches never mix bins);
3. a closed batch whose longest minus shortest utterance exceeds
   ``max_length_difference`` seconds is dropped (its utterances are not seen
   this epoch: ``dropped_batches`` / ``dropped_utterances`` count them).

The kept batches of all bins are then shuffled together.

Where the paper leaves a choice, and what is chosen here
(the paper's released code, a torchdata pipeline, was read for facts):

- *budget*: ``padded=True`` (default) counts the padded size
  ``len(batch) * longest`` against ``max_samples`` (what fills GPU memory;
  the paper's code does this), ``padded=False`` the sum of lengths (the
  paper's wording "total speech duration"); both are upper bounds, a batch
  never exceeds its budget;
- *bins*: consecutive runs of ``bin_size`` utterances of the length-sorted
  list (ties broken by dataset index), fixed for all epochs; the last bin
  holds the remainder. The released code streams length-sorted shards
  through a small shuffle buffer, so a queue there can straddle two shards;
  here a queue never leaves its bin, as the paper says;
- *queue*: the released code's priority queue pops the shortest of the
  buffer, so an utterance shorter than the batch's first can still join it
  (the batch is not sorted); kept as is;
- *the 10 s rule*: dropped when the difference is strictly more than
  ``max_length_difference`` (the paper's words; the released code drops at
  a difference of 10 s or more, which only differs at exactly 10 s);
- *batch order*: all the epoch's kept batches are shuffled at once (the
  released code shuffles within a buffer of 10 batches);
- *each bin's last batch* is kept (``drop_last=False``, the released code
  flushes its last batch too); ``drop_last=True`` drops it (it may be small);
- *too long utterances*: one longer than the budget can never be batched and
  is an error; ``max_duration`` (the released code uses 30 s) leaves out
  longer utterances up front (counted in ``excluded_utterances``).

Padding: with this sampler the pre-training recipe pads each batch to its
longest utterance, as the paper does (``recipes/pretrain/hparams/paper001_*.yaml``:
``crop_to_shortest: False``); the model is given the lengths, so padded
frames are never masked, never attended to and in no loss term (the CNN
still convolves them and, with a GroupNorm front end, normalises over them,
as in the paper and fairseq). With ``crop_to_shortest: True`` every batch is
cropped to its shortest clip instead (fairseq), which the length-similar
batches made here keep small.

:class:`SeenAccounting` keeps Table 2 (hours seen, upper bound and
measured, epochs, the most repeats of an utterance) through a run.

Example
-------
>>> durations = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 40.0]
>>> sampler = Paper001BatchSampler(durations, max_samples=5 * 16000, bin_size=4,
...                                queue_size=2, max_duration=30.0, seed=0)
>>> sorted(sorted(batch) for batch in sampler)  # bins {0..3} and {4, 5, 6}; 7 left out
[[0, 1], [2, 3], [4], [5], [6]]
>>> sampler.excluded_utterances
1
>>> sampler = Paper001BatchSampler([1.0, 1.2, 1.4, 12.0, 13.0, 13.5], max_samples=60 * 16000)
>>> list(sampler), sampler.dropped_batches, sampler.dropped_utterances  # 1.0 .. 12.0 s: 11 s apart
([[4, 5]], 1, 4)
"""
import heapq
import logging

import numpy as np
import torch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks

logger = logging.getLogger(__name__)


class Paper001BatchSampler(torch.utils.data.Sampler):
    """Length-binned, priority-queue batches of dataset indices (paper 001).

    Arguments
    ---------
    durations : sequence of float
        Seconds of each dataset item, in dataset order.
    max_samples : int
        Per-batch budget in samples (2_400_000; 1_400_000 at 87.5 s per update).
    sample_rate : int
        Samples per second of ``durations`` (16000).
    bin_size : int or None
        Utterances per length bin (5000); ``None``: one bin.
    queue_size : int
        Length of the priority queue (50).
    max_length_difference : float or None
        Seconds; a batch whose longest and shortest items differ by more is
        dropped (10.0); ``None`` keeps every batch.
    padded : bool
        Budget on ``len(batch) * longest`` (True) or on the sum of lengths.
    max_duration : float or None
        Items longer than this many seconds are left out of every epoch.
    drop_last : bool
        Drop each bin's last batch.
    seed : int
        With the epoch, fixes every random choice.

    Raises
    ------
    ValueError
        An empty dataset, or an item longer than the budget.
    """

    def __init__(self, durations, max_samples=2_400_000, sample_rate=16000, bin_size=5000,
                 queue_size=50, max_length_difference=10.0, padded=True, max_duration=None,
                 drop_last=False, seed=0):
        self.durations = [float(d) for d in durations]
        if not self.durations:
            raise ValueError("Paper001BatchSampler: the dataset is empty")
        if queue_size < 1 or (bin_size is not None and bin_size < 1):
            raise ValueError(f"queue_size ({queue_size}) and bin_size ({bin_size}) must be >= 1")
        self.sample_rate = int(sample_rate)
        self.max_samples = int(max_samples)
        # integer samples: the budget and the 10 s rule are exact comparisons
        self.lengths = [int(round(d * self.sample_rate)) for d in self.durations]
        keep = [i for i, d in enumerate(self.durations) if max_duration is None or d <= max_duration]
        self.excluded_utterances = len(self.durations) - len(keep)
        if not keep:
            raise ValueError(f"no item is at most max_duration={max_duration} s long")
        longest = max(keep, key=lambda i: self.lengths[i])
        if self.lengths[longest] > self.max_samples:
            raise ValueError(
                f"item {longest} ({self.durations[longest]:.2f} s, {self.lengths[longest]} samples) "
                f"is longer than the batch budget max_samples={self.max_samples} "
                f"({self.max_samples / self.sample_rate:g} s); leave such items out with max_duration")
        self.max_difference = (None if max_length_difference is None
                               else int(round(max_length_difference * self.sample_rate)))
        # bins: consecutive runs of the length-sorted items, fixed for all epochs
        ordered = sorted(keep, key=lambda i: (self.lengths[i], i))
        size = len(ordered) if bin_size is None else int(bin_size)
        self.bins = [ordered[start:start + size] for start in range(0, len(ordered), size)]
        self.queue_size = int(queue_size)
        self.padded = bool(padded)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.epoch = 0
        self._cache = None
        self.dropped_batches = self.dropped_utterances = 0

    def set_epoch(self, epoch):
        """Batches of ``epoch`` (SpeechBrain calls this at each epoch start)."""
        self.epoch = int(epoch)

    def _cost(self, count, longest, total):
        return count * longest if self.padded else total

    def _bin_batches(self, members, rng):
        """Closed batches of one bin, in the order the queue closes them."""
        lengths = self.lengths
        batches, batch, longest, total = [], [], 0, 0

        def offer(index):
            nonlocal batch, longest, total
            length = lengths[index]
            if batch and self._cost(len(batch) + 1, max(longest, length),
                                    total + length) > self.max_samples:
                batches.append(batch)
                batch, longest, total = [], 0, 0
            batch.append(index)
            longest, total = max(longest, length), total + length

        heap = []
        for index in rng.permutation(len(members)):
            item = members[int(index)]
            heapq.heappush(heap, (lengths[item], item))  # ties: the lower index first
            if len(heap) >= self.queue_size:
                offer(heapq.heappop(heap)[1])
        while heap:
            offer(heapq.heappop(heap)[1])
        if batch and not self.drop_last:
            batches.append(batch)
        return batches

    def _too_spread(self, batch):
        if self.max_difference is None:
            return False
        lengths = [self.lengths[i] for i in batch]
        return max(lengths) - min(lengths) > self.max_difference

    def batches(self):
        """This epoch's batches: a list of lists of dataset indices."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        # one stream per (seed, epoch): no collision between seed s, epoch e+1
        # and seed s+1, epoch e (as seed + epoch would give)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
        kept, dropped = [], []
        for members in self.bins:
            for batch in self._bin_batches(members, rng):
                (dropped if self._too_spread(batch) else kept).append(batch)
        self.dropped_batches = len(dropped)
        self.dropped_utterances = sum(len(b) for b in dropped)
        if dropped:
            logger.debug(f"epoch {self.epoch}: dropped {len(dropped)} batches "
                         f"({self.dropped_utterances} utterances) spread over more than "
                         f"{self.max_difference / self.sample_rate:g} s")
        kept = [kept[int(i)] for i in rng.permutation(len(kept))]
        self._cache = (self.epoch, kept)
        return kept

    def batch_samples(self, padded=None):
        """Samples in each of this epoch's batches: padded (``len * longest``)
        or summed lengths (``padded=False``); default: as budgeted.

        >>> sampler = Paper001BatchSampler([1.0, 2.0], max_samples=4 * 16000)
        >>> sampler.batch_samples(), sampler.batch_samples(padded=False)
        ([64000], [48000])
        """
        padded = self.padded if padded is None else padded
        out = []
        for batch in self.batches():
            lengths = [self.lengths[i] for i in batch]
            out.append(len(lengths) * max(lengths) if padded else sum(lengths))
        return out

    def __iter__(self):
        return iter(self.batches())

    def __len__(self):
        return len(self.batches())


@register_checkpoint_hooks
class SeenAccounting:
    """Paper 001's Table 2, kept during training: how often each training
    utterance was put into a trained batch, checkpointed with the run.

    :meth:`table2` gives, after ``updates`` updates of ``seconds_per_update``
    seconds (the requested batch size):

    - ``upper_bound_hours``: ``updates * seconds_per_update / 3600`` (the
      paper's "upper bound", what its Figs 4-5 plot);
    - ``upper_bound_epochs``: that over the training set's hours;
    - ``measured_hours``: the summed durations of every utterance put into a
      trained batch, looked up without padding (the paper's "measured";
      below the upper bound since batches are filled up to a budget and
      batches breaking the 10 s rule are dropped);
    - ``measured_epochs``, ``max_repeats`` (the most times any utterance was
      seen), ``dataset_hours``.

    Counts are per process; :meth:`table2` sums them over the processes of a
    torchrun job (every process must call it: the recipe does before each
    validation checkpoint) and the checkpoint stores that sum (loaded back
    into the main process only, so sums stay right on resume). SpeechBrain
    saves on the main process alone, where no collective can run: in a
    multi-process job a time-based checkpoint between validations stores the
    sum of the last :meth:`table2` plus the main process's counts since. A checkpoint maps counts by utterance id, so a reordered
    manifest resumes correctly.

    Example
    -------
    >>> seen = SeenAccounting()
    >>> seen.bind(["a", "b", "c"], [3600.0, 1800.0, 1800.0])
    >>> seen.add(["a", "b"]); seen.add(["b"])
    >>> {k: round(v, 3) for k, v in seen.table2(updates=2, seconds_per_update=3600).items()}
    {'upper_bound_hours': 2.0, 'upper_bound_epochs': 1.0, 'measured_hours': 2.0, 'measured_epochs': 1.0, 'max_repeats': 2, 'dataset_hours': 2.0}
    """

    def __init__(self):
        self.ids, self.index, self.counts, self.seconds = [], {}, None, None
        self._pending = None
        self._synced = None  # (totals, local counts) at the last table2

    def bind(self, ids, durations):
        """The training set: utterance ``ids`` and their ``durations`` (seconds)."""
        ids = [str(i) for i in ids]
        if len(ids) != len(durations):
            raise ValueError(f"{len(ids)} ids but {len(durations)} durations")
        self.ids, self.index = ids, {name: k for k, name in enumerate(ids)}
        self.seconds = torch.tensor([float(d) for d in durations], dtype=torch.float64)
        self.counts = torch.zeros(len(ids), dtype=torch.int64)
        if self._pending is not None:
            self._restore(self._pending)

    def add(self, ids):
        """One trained batch's utterance ids."""
        if self.counts is None:
            raise RuntimeError("SeenAccounting.add before bind")
        for name in ids:
            self.counts[self.index[str(name)]] += 1

    def _totals(self):
        counts = self.counts.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        return counts

    def table2(self, updates, seconds_per_update):
        """The row of Table 2 now (see the class docstring); a dict."""
        counts = self._totals()
        self._synced = (counts.clone(), self.counts.clone())
        dataset = float(self.seconds.sum()) / 3600
        upper = updates * float(seconds_per_update) / 3600
        measured = float((counts.double() * self.seconds).sum()) / 3600
        return {"upper_bound_hours": upper, "upper_bound_epochs": upper / dataset,
                "measured_hours": measured, "measured_epochs": measured / dataset,
                "max_repeats": int(counts.max()) if len(counts) else 0, "dataset_hours": dataset}

    def _restore(self, state):
        unknown = [name for name in state["ids"] if name not in self.index]
        if unknown:
            raise ValueError(f"the checkpoint's utterance counts name {len(unknown)} utterance(s) "
                             f"not in this training set (e.g. {unknown[0]}): another manifest?")
        self.counts.zero_()
        rank = torch.distributed.get_rank() if (torch.distributed.is_available()
                                                and torch.distributed.is_initialized()) else 0
        if rank == 0:
            for name, count in zip(state["ids"], state["counts"].tolist()):
                self.counts[self.index[name]] = count
        self._pending, self._synced = None, None

    @mark_as_saver
    def _save(self, path):
        if self.counts is None:
            counts = torch.zeros(0, dtype=torch.int64)
        elif self._synced is None:  # one process, or no table2 yet
            counts = self.counts
        else:  # no collective here (main process only): the last sum + ours since
            counts = self._synced[0] + self.counts - self._synced[1]
        seen = counts.nonzero().flatten().tolist()
        torch.save({"ids": [self.ids[k] for k in seen], "counts": counts[seen]}, path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        state = torch.load(path, map_location="cpu", weights_only=True)
        if self.counts is None:
            self._pending = state
        else:
            self._restore(state)
