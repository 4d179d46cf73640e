"""Paper 001's batches (``speechbrain_ext.training.paper001_batching``):
budget, the 10 s rule, one bin per batch, each utterance at most once per
epoch, determinism per (seed, epoch), and no padding in what the
pre-training losses see."""
import numpy as np
import pytest
import torch

from speechbrain_ext.training.batching import crop_to_shortest
from speechbrain_ext.training.paper001_batching import Paper001BatchSampler

RATE = 16000


def librispeech_like(count=3000, seed=0):
    """Durations shaped like LibriSpeech train: most 10-17 s, a spread tail
    from 0.83 s to 35 s (so that the top and bottom bins span > 10 s)."""
    rng = np.random.default_rng(seed)
    bulk = rng.uniform(10.0, 17.0, size=int(count * 0.7))
    tail = rng.uniform(0.83, 35.0, size=count - bulk.size)
    durations = np.concatenate([bulk, tail])
    rng.shuffle(durations)
    return durations.round(4).tolist()


def samples(durations, batch):
    return [int(round(durations[i] * RATE)) for i in batch]


@pytest.fixture(scope="module")
def durations():
    return librispeech_like()


@pytest.mark.parametrize("budget,padded", [(2_400_000, True), (1_400_000, True),
                                           (2_400_000, False)])
def test_every_batch_respects_the_budget_and_the_10s_rule(durations, budget, padded):
    sampler = Paper001BatchSampler(durations, max_samples=budget, bin_size=500, queue_size=50,
                                   padded=padded, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        lengths = samples(durations, batch)
        assert (len(lengths) * max(lengths) if padded else sum(lengths)) <= budget
        assert max(lengths) - min(lengths) <= 10 * RATE
    assert sampler.batch_samples() == [
        (len(b) * max(samples(durations, b)) if padded else sum(samples(durations, b)))
        for b in batches]
    # the spread bins really produce batches to drop (Table 2's missing hours)
    assert sampler.dropped_batches > 0


def test_no_utterance_twice_and_every_one_accounted_for(durations):
    sampler = Paper001BatchSampler(durations, max_samples=2_400_000, bin_size=500, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        seen = [i for batch in sampler for i in batch]
        assert len(seen) == len(set(seen)), "an utterance appears twice in one epoch"
        # kept + dropped = everything (no utterance is silently lost)
        assert len(seen) + sampler.dropped_utterances == len(durations)


def test_batches_never_mix_bins(durations):
    sampler = Paper001BatchSampler(durations, max_samples=2_400_000, bin_size=500, seed=0)
    bin_of = {i: b for b, members in enumerate(sampler.bins) for i in members}
    assert [len(members) for members in sampler.bins] == [500] * 6
    # bins are consecutive runs of the length-sorted list
    edges = [(min(durations[i] for i in m), max(durations[i] for i in m)) for m in sampler.bins]
    assert all(edges[k][1] <= edges[k + 1][0] for k in range(len(edges) - 1))
    for batch in sampler:
        assert len({bin_of[i] for i in batch}) == 1


def test_a_whole_bin_in_the_queue_fills_shortest_first():
    """With the queue as large as the bin, the queue pops the bin in length
    order, so the batches are the greedy runs of the sorted bin (computed
    here independently)."""
    rng = np.random.default_rng(5)
    durations = rng.uniform(2.0, 9.0, size=200).round(3).tolist()
    budget = 40 * RATE
    sampler = Paper001BatchSampler(durations, max_samples=budget, bin_size=50, queue_size=50,
                                   max_length_difference=None, seed=0)
    expected = []
    order = sorted(range(len(durations)), key=lambda i: (durations[i], i))
    for start in range(0, 200, 50):
        batch = []
        for index in order[start:start + 50]:
            if batch and (len(batch) + 1) * int(round(durations[index] * RATE)) > budget:
                expected.append(batch)
                batch = []
            batch.append(index)
        expected.append(batch)
    assert sorted(sampler) == sorted(expected)


def test_deterministic_per_seed_and_epoch(durations):
    a = Paper001BatchSampler(durations, max_samples=2_400_000, bin_size=500, seed=7)
    b = Paper001BatchSampler(durations, max_samples=2_400_000, bin_size=500, seed=7)
    first = list(a)
    assert first == list(b)
    a.set_epoch(1)
    b.set_epoch(1)
    second = list(a)
    assert second == list(b) and second != first
    a.set_epoch(0)
    assert list(a) == first and len(a) == len(first)
    other = Paper001BatchSampler(durations, max_samples=2_400_000, bin_size=500, seed=8)
    assert list(other) != first
    # seed 7 / epoch 1 and seed 8 / epoch 0 are different streams
    assert list(other) != second


def test_too_long_items_are_refused_or_left_out():
    with pytest.raises(ValueError, match="longer than the batch budget"):
        Paper001BatchSampler([5.0, 200.0], max_samples=2_400_000)
    sampler = Paper001BatchSampler([5.0, 200.0, 6.0], max_samples=2_400_000, max_duration=30.0)
    assert sampler.excluded_utterances == 1
    assert sorted(i for b in sampler for i in b) == [0, 2]
    with pytest.raises(ValueError, match="empty"):
        Paper001BatchSampler([])


def test_drop_last_drops_each_bins_last_batch():
    durations = [3.0] * 25  # 10 per 30 s batch: 2 full batches and 5 left per bin of 25
    keep = Paper001BatchSampler(durations, max_samples=30 * RATE, bin_size=None)
    drop = Paper001BatchSampler(durations, max_samples=30 * RATE, bin_size=None, drop_last=True)
    assert sorted(len(b) for b in keep) == [5, 10, 10]
    assert sorted(len(b) for b in drop) == [10, 10]


def padded_batch(waveforms):
    """SpeechBrain's PaddedBatch in miniature: right zero-padding and relative lengths."""
    longest = max(len(w) for w in waveforms)
    wav = torch.zeros(len(waveforms), longest)
    for row, w in enumerate(waveforms):
        wav[row, :len(w)] = w
    return wav, torch.tensor([len(w) / longest for w in waveforms])


def test_the_cropped_pretraining_batch_has_no_padding():
    """The pre-training recipe crops every batch to its shortest clip
    (``crop_to_shortest``, as fairseq does) and passes no lengths to the
    model, so there is no padding in pre-training: every cropped sample lies
    inside its own utterance."""
    durations = [1.00, 1.05, 1.10, 1.20, 1.30]
    sampler = Paper001BatchSampler(durations, max_samples=8 * RATE, bin_size=None, seed=0)
    (batch,) = list(sampler)
    generator = torch.Generator().manual_seed(0)
    # strictly positive audio: a zero after cropping could only be padding
    waveforms = [1.0 + torch.rand(int(round(durations[i] * RATE)), generator=generator) for i in batch]
    wav, wav_lens = padded_batch(waveforms)
    assert (wav == 0).any()  # the collated batch is padded
    cropped = crop_to_shortest(wav, wav_lens, generator)
    shortest = min(len(w) for w in waveforms)
    assert cropped.shape == (len(batch), shortest)
    assert bool((cropped > 0).all())
    for row, w in zip(cropped, waveforms):  # a contiguous piece of the utterance itself
        starts = [s for s in range(len(w) - shortest + 1) if torch.equal(w[s:s + shortest], row)]
        assert starts


def test_where_the_recipe_pads_the_losses_skip_padded_frames():
    """Without cropping (batches of pieces, fine-tuning) the batch is padded
    and ``wav_lens`` is passed: the contrastive and diversity terms use only
    the masked frames, which never fall on padding."""
    from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    torch.manual_seed(0)
    model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5, codevector_dim=32,
                                     final_dim=16, num_vars=8)
    waveforms = [torch.randn(16000), torch.randn(9000), torch.randn(12000)]
    wav, wav_lens = padded_batch(waveforms)
    out = model(wav, wav_lens)
    frames = model.wav2vec2.frame_lengths(torch.tensor([len(w) for w in waveforms]))
    time_mask = out["time_mask"]
    valid = torch.arange(time_mask.shape[1])[None, :] < frames[:, None]
    assert time_mask.any(dim=1).all()
    assert not bool((time_mask & ~valid).any()), "a masked (loss) frame lies on padding"
    assert torch.isfinite(out["loss"])
