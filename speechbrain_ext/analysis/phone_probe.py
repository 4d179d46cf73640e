"""Frame phone classification on frozen features (SUPERB's PR task as a
probe, scored by frame accuracy): does a pre-trained backbone's every 20 ms
frame say which phone is being spoken, better than random networks of its
shape and than log-mel filter banks?

Labels are CPC's LibriSpeech phone alignments (the format of
``LibriSpeech100_labels_split``, read and checked by
``speechbrain_ext.io.alignments.read_alignments``): one phone index per
10 ms frame (frame k covers samples ``[160k, 160k + 160)`` at 16 kHz) of
every utterance, train and test splits of utterance ids, optionally the
phone names (without them the class count is the largest index + 1).

Audio: ``<LibriSpeech root>/<subset>/<SPK>/<CHAPTER>/<SPK-CHAPTER-UTT>.flac``,
searched in ``DEFAULT_SUBSETS``.

Frames: a backbone frame (stride 320, receptive field 400 samples) is
centred on sample ``320 t + 200``, inside 10 ms label frame ``2 t + 1``,
which is its label; features and labels are cut to the shorter. The
filter-bank baseline (SUPERB's FBANK at the backbone's frame rate) stacks
the two 10 ms log-mel frames ``2 t + 1`` and ``2 t + 2`` (80 bins each, 25 ms
windows centred every 10 ms) into one 160-d vector, centred on that label
frame. Each utterance runs alone through the backbone (no padding, see
``speechbrain_ext.analysis.probe.pooled_features``), in eval mode.

Probes (``train_frame_probe``), trained on the train split's frames and
scored by frame accuracy on the test split: ``linear`` (one ``nn.Linear``) or
``mlp`` (one ReLU hidden layer), on features standardised with the train
frames' statistics, with cross-entropy and Adam on mini-batches of frames for
a fixed number of epochs, seeded by a ``torch.Generator`` (initialisation and
order), the same budget for every network. ``layer="weighted"`` feeds a
learned softmax-weighted sum of every hidden state (each standardised on its
own), trained with the probe, as SUPERB does; an int picks one state
(``hidden_states[layer]``: 0 is the CNN projection, -1 the last layer).

Command line::

    python -m speechbrain_ext.analysis.phone_probe results/runs/pretrain_micro/save \\
        --data_folder data/mini --probe both --json phone_probe.json

Example
-------
>>> import math, torch
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
>>> def utterance(uid, freqs):  # 0.1 s per "phone": a tone of its own frequency
...     t = torch.arange(1600) / 16000
...     wav = torch.cat([0.3 * torch.sin(2 * math.pi * f * t) for f in freqs])
...     return Utterance(uid, wav, torch.tensor([i for i in range(len(freqs)) for _ in range(10)]))
>>> task = PhoneTask(train=[utterance("1-1-1", [300, 900, 2500])],
...                  test=[utterance("2-1-1", [300, 900, 2500])], num_classes=3)
>>> net = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
>>> result = compare_phone_probe(net, task, random_seeds=(0, 1), epochs=2)
>>> sorted(result["probes"]["linear"]["random"])
['accuracy', 'best', 'max', 'mean', 'min', 'seeds', 'std']
>>> result["test_frames"], len(result["probes"]["linear"]["layer_weights"])
(14, 3)
"""
import argparse
import json
import logging
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from torch import nn

from speechbrain_ext.analysis.probe import random_like
from speechbrain_ext.downstream.upstream import WeightedLayerSum
from speechbrain_ext.io.alignments import (FRAME_SAMPLES, LABELS_FOLDER, SPLIT_FILES, Alignments,
                                           read_alignments)
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.io.data import SAMPLE_RATE, read_audio_file
from speechbrain_ext.interop.loading import load_backbone

logger = logging.getLogger(__name__)

LABEL_HOP = FRAME_SAMPLES  # samples per 10 ms label frame
FRAME_STRIDE = 320  # samples per backbone frame (20 ms)
RECEPTIVE_FIELD = 400  # samples seen by one backbone frame
FBANK_MELS = 80
DEFAULT_ALIGNMENTS = LABELS_FOLDER  # under <data>/LibriSpeech
DEFAULT_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean",
                   "dev-other", "test-clean", "test-other")
PROBES = ("linear", "mlp")
# labels this many 10 ms frames longer than the audio: probably not its alignment
LENGTH_TOLERANCE = 10


# ---------------------------------------------------------------- reading


def find_audio(librispeech_root, uid, subsets=DEFAULT_SUBSETS):
    """The ``.flac`` of utterance ``uid`` (``SPK-CHAPTER-UTT``) in the first
    of ``subsets`` that has it; ``FileNotFoundError`` naming the id and the
    folders searched."""
    speaker, chapter, _ = uid.split("-")
    root = Path(librispeech_root)
    for subset in subsets:
        path = root / subset / speaker / chapter / f"{uid}.flac"
        if path.is_file():
            return path
    searched = ", ".join(str(root / s / speaker / chapter) for s in subsets)
    raise FileNotFoundError(f"no audio for {uid}: {uid}.flac is in none of {searched}")


# ---------------------------------------------------------------- the task


@dataclass
class Utterance:
    """uid; waveform ``[samples]`` (16 kHz); labels ``[label frames]`` long
    tensor, one phone index per 10 ms."""

    uid: str
    waveform: torch.Tensor
    labels: torch.Tensor


@dataclass
class PhoneTask:
    """The utterances of a phone probe, loaded once and reused for every
    network (``load_phone_task`` reads them from an alignment folder); the
    filter-bank features are computed once, on first use
    (``fbank_features``)."""

    train: List[Utterance]
    test: List[Utterance]
    num_classes: int
    phones: Optional[List[str]] = None
    _fbank: dict = field(default_factory=dict, repr=False, compare=False)

    def split(self, name):
        if name not in SPLIT_FILES:
            raise ValueError(f"split {name!r}: expected one of {sorted(SPLIT_FILES)}")
        return getattr(self, name)

    def fbank_features(self, name):
        """The split's ``[frames, 160]`` stacked log-mel features, cached."""
        if name not in self._fbank:
            self._fbank[name] = fbank_frame_features([u.waveform for u in self.split(name)])
        return self._fbank[name]

    def summary(self):
        """Utterances and seconds per split, and the class count (JSON-ready)."""
        out = {"num_classes": self.num_classes}
        for name in SPLIT_FILES:
            utterances = self.split(name)
            out[f"{name}_utterances"] = len(utterances)
            out[f"{name}_seconds"] = round(sum(len(u.waveform) for u in utterances) / SAMPLE_RATE, 3)
        return out


def _select(ids, max_utterances, max_seconds, seconds_of, seed):
    """Ids kept under the limits: a seeded random subset (so that a limit
    does not keep the first speakers only), in the split file's order."""
    if max_utterances is None and max_seconds is None:
        return list(ids)
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    kept, total = [], 0.0
    for index in order:
        if max_utterances is not None and len(kept) >= max_utterances:
            break
        if max_seconds is not None:
            seconds = seconds_of(ids[index])
            if kept and total + seconds > max_seconds:
                continue
            total += seconds
        kept.append(index)
    return [ids[i] for i in sorted(kept)]


def load_phone_task(alignments, librispeech_root, subsets=DEFAULT_SUBSETS, max_train_utterances=None,
                    max_test_utterances=None, max_train_seconds=None, max_test_seconds=None, seed=0):
    """Read the audio and labels of the train and test splits into a
    ``PhoneTask``.

    Arguments
    ---------
    alignments : str, Path or Alignments
        An alignment folder (read with ``read_alignments``) or what it read.
    librispeech_root : str or Path
        The folder holding ``subsets`` (``train-clean-100``, ...).
    max_train_utterances, max_test_utterances : int, optional
        Keep at most this many utterances of the split (a seeded random
        subset, ``seed``); None: all.
    max_train_seconds, max_test_seconds : float, optional
        Keep utterances while their audio totals at most this (at least one
        is kept); None: no limit. The seconds come from the label count
        (10 ms each), so that skipped files are never read.
    """
    if not isinstance(alignments, Alignments):
        alignments = read_alignments(alignments)
    limits = {"train": (max_train_utterances, max_train_seconds), "test": (max_test_utterances, max_test_seconds)}
    splits = {}
    for name, (max_utterances, max_seconds) in limits.items():
        ids = _select(getattr(alignments, f"{name}_ids"), max_utterances, max_seconds,
                      lambda uid: len(alignments.labels[uid]) * LABEL_HOP / SAMPLE_RATE, seed)
        utterances = []
        for uid in ids:
            wav = read_audio_file(find_audio(librispeech_root, uid, subsets))
            labels = torch.from_numpy(alignments.labels[uid].astype(np.int64))
            excess = len(labels) - len(wav) // LABEL_HOP
            if excess > LENGTH_TOLERANCE:
                logger.warning(f"{uid}: {len(labels)} label frames for {len(wav) / SAMPLE_RATE:.2f} s of "
                               f"audio ({excess} more than its 10 ms frames): is it the right file?")
            utterances.append(Utterance(uid, wav, labels))
        splits[name] = utterances
    return PhoneTask(splits["train"], splits["test"], alignments.num_classes, alignments.phones)


# ---------------------------------------------------------------- features


def backbone_frame_count(num_samples):
    """Frames of a backbone with the wav2vec2 CNN (stride 320, receptive
    field 400) for ``num_samples`` samples.

    >>> backbone_frame_count(16000), backbone_frame_count(8000)
    (49, 24)
    """
    return max(0, (num_samples - RECEPTIVE_FIELD) // FRAME_STRIDE + 1)


def align_labels(features, labels):
    """``(features, frame labels)`` cut to the shorter: backbone frame t is
    labelled with 10 ms label frame ``2 t + 1`` (the one holding its centre,
    sample ``320 t + 200``).

    features : ``[frames, D]`` or ``[states, frames, D]``.
    labels : ``[label frames]`` (10 ms).
    Returns ``features[..., :n, :]`` and ``[n]`` labels.

    >>> x, y = align_labels(torch.zeros(3, 4), torch.tensor([5, 6, 7, 8, 9, 10, 11, 12]))
    >>> tuple(x.shape), y.tolist()
    ((3, 4), [6, 8, 10])
    >>> x, y = align_labels(torch.zeros(2, 5, 4), torch.tensor([5, 6, 7, 8, 9]))
    >>> tuple(x.shape), y.tolist()
    ((2, 2, 4), [6, 8])
    """
    frame_labels = labels[1::2]
    n = min(features.shape[-2], len(frame_labels))
    return features[..., :n, :], frame_labels[:n]


@torch.no_grad()
def backbone_frame_features(backbone, waveforms, layer="weighted", device=None):
    """Per utterance the frames of a frozen ``backbone`` (eval mode, no
    gradients, each utterance alone): ``[frames, D]`` of
    ``hidden_states[layer]`` for an int ``layer`` (negative counts from the
    end), or ``[states, frames, D]``, every state, for ``layer="weighted"``.
    Returned on the CPU; ``device``: where the backbone runs (None: where
    its parameters are).

    >>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
    >>> net = Wav2Vec2Backbone(Wav2Vec2Config.micro())
    >>> [tuple(f.shape) for f in backbone_frame_features(net, [torch.randn(8000)], layer=-1)]
    [(24, 64)]
    >>> [tuple(f.shape) for f in backbone_frame_features(net, [torch.randn(16000)])]
    [(3, 49, 64)]
    """
    _check_layer(layer)
    backbone.eval()
    if device is not None:
        backbone.to(device)
    device = next(backbone.parameters()).device
    out = []
    for wav in waveforms:
        states = backbone(wav.to(device)[None]).hidden_states
        if layer == "weighted":
            out.append(torch.stack(states)[:, 0].float().cpu())
        else:
            if not -len(states) <= layer < len(states):
                raise ValueError(f"layer {layer}: the backbone has {len(states)} hidden states "
                                 f"(CNN projection + {len(states) - 1} layers)")
            out.append(states[layer][0].float().cpu())
    return out


_FBANK = {}


@torch.no_grad()
def fbank_frame_features(waveforms, n_mels=FBANK_MELS):
    """Per utterance ``[frames, 2 * n_mels]``: SpeechBrain's log-mel
    filter banks (``speechbrain.lobes.features.Fbank``: 25 ms windows centred
    every 10 ms), 10 ms frames ``2 t + 1`` and ``2 t + 2`` stacked as 20 ms
    frame t, as many frames as a wav2vec2 CNN gives (``backbone_frame_count``)
    and aligned the same way (centred on label frame ``2 t + 1``).

    >>> [tuple(f.shape) for f in fbank_frame_features([torch.randn(16000), torch.randn(8000)])]
    [(49, 160), (24, 160)]
    """
    if n_mels not in _FBANK:
        from speechbrain.lobes.features import Fbank

        _FBANK[n_mels] = Fbank(n_mels=n_mels, sample_rate=SAMPLE_RATE, win_length=25, hop_length=10)
    fbank = _FBANK[n_mels]
    out = []
    for wav in waveforms:
        mels = fbank(wav.float()[None])[0]  # [len // 160 + 1, n_mels], frame j centred on 160 j
        t = backbone_frame_count(len(wav))
        out.append(torch.cat([mels[1:2 * t:2], mels[2:2 * t + 1:2]], dim=-1))
    return out


def _check_layer(layer):
    if layer != "weighted" and (isinstance(layer, bool) or not isinstance(layer, int)):
        raise ValueError(f"layer {layer!r}: expected 'weighted' or an int index into hidden_states")


# ---------------------------------------------------------------- probes


def _seeded_linear(in_dim, out_dim, generator):
    """``nn.Linear`` with PyTorch's default init ranges (uniform +-1/sqrt(in))
    drawn from ``generator``."""
    linear = nn.Linear(in_dim, out_dim)
    bound = in_dim ** -0.5
    with torch.no_grad():
        linear.weight.copy_(torch.rand(linear.weight.shape, generator=generator) * 2 * bound - bound)
        linear.bias.copy_(torch.rand(linear.bias.shape, generator=generator) * 2 * bound - bound)
    return linear


class FrameProbe(nn.Module):
    """A frame classifier: ``[frames, D]`` (or ``[states, frames, D]`` with
    ``num_states``: a ``WeightedLayerSum`` first) -> ``[frames, classes]``
    logits. ``kind``: ``linear`` or ``mlp`` (``hidden_size`` ReLU units)."""

    def __init__(self, in_dim, num_classes, kind="linear", hidden_size=256, num_states=None, generator=None):
        super().__init__()
        if kind not in PROBES:
            raise ValueError(f"probe {kind!r}: expected one of {PROBES}")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.layer_sum = WeightedLayerSum(num_states) if num_states else None
        if kind == "linear":
            self.head = _seeded_linear(in_dim, num_classes, generator)
        else:
            self.head = nn.Sequential(_seeded_linear(in_dim, hidden_size, generator), nn.ReLU(),
                                      _seeded_linear(hidden_size, num_classes, generator))

    def forward(self, x):
        if self.layer_sum is not None:
            x = self.layer_sum(x[:, :, None, :])[:, 0]  # [states, frames, D] -> [frames, D]
        return self.head(x)

    def layer_weights(self):
        """The softmax weights of the states (a list), or None."""
        return None if self.layer_sum is None else torch.softmax(self.layer_sum.weights, 0).tolist()


def _frames(xs, ys):
    """Concatenated ``[..., N, D]`` features and ``[N]`` labels."""
    if isinstance(xs, torch.Tensor):
        return xs.float(), ys.long()
    return torch.cat(list(xs), dim=-2).float(), torch.cat(list(ys)).long()


def train_frame_probe(train_x, train_y, test_x, test_y, num_classes, probe="linear", epochs=20, lr=1e-3,
                      batch_size=256, hidden_size=256, seed=0, device="cpu", eval_batch_size=8192):
    """Train a frame probe and score it by frame accuracy.

    Arguments
    ---------
    train_x, test_x : list of torch.Tensor, or torch.Tensor
        ``[frames, D]`` per utterance, or ``[states, frames, D]`` (a learned
        softmax-weighted sum of the states, each standardised on its own,
        is trained with the probe); or the frames already concatenated.
    train_y, test_y : list of torch.LongTensor, or torch.LongTensor
        ``[frames]`` labels, aligned with the features (``align_labels``).
    num_classes : int
        Output size.
    probe : str
        ``linear`` or ``mlp`` (one hidden layer of ``hidden_size`` ReLU units).
    epochs, lr, batch_size : int, float, int
        Adam on shuffled mini-batches of ``batch_size`` frames, for
        ``epochs`` passes over the train frames.
    seed : int
        Seeds the initialisation and the order (a ``torch.Generator``; the
        global RNG is not used): the same seed gives the same result.

    Returns
    -------
    dict
        ``test_accuracy``, ``train_accuracy`` (fractions of frames), and
        ``layer_weights`` (softmax weights of the states, or None).

    Example
    -------
    >>> gen = torch.Generator().manual_seed(0)
    >>> y = torch.randint(0, 3, (600,), generator=gen)
    >>> x = torch.randn(600, 8, generator=gen) + 3 * nn.functional.one_hot(y, 8)
    >>> r = train_frame_probe(x[:400], y[:400], x[400:], y[400:], num_classes=3, epochs=5, lr=1e-2,
    ...                       batch_size=32)
    >>> r["test_accuracy"] > 0.9, r["layer_weights"]
    (True, None)
    """
    train_x, train_y = _frames(train_x, train_y)
    test_x, test_y = _frames(test_x, test_y)
    if train_x.shape[-2] != len(train_y) or test_x.shape[-2] != len(test_y):
        raise ValueError(f"features and labels differ in frames: train {tuple(train_x.shape)} vs "
                         f"{len(train_y)}, test {tuple(test_x.shape)} vs {len(test_y)}")
    if len(train_y) == 0 or len(test_y) == 0:
        raise ValueError("no train or no test frames")
    if int(max(train_y.max(), test_y.max())) >= num_classes:
        raise ValueError(f"a label is >= num_classes ({num_classes})")
    mean = train_x.mean(-2, keepdim=True)
    std = train_x.std(-2, keepdim=True) + 1e-5
    num_states = train_x.shape[0] if train_x.dim() == 3 else None
    generator = torch.Generator().manual_seed(seed)
    model = FrameProbe(train_x.shape[-1], num_classes, probe, hidden_size, num_states, generator).to(device)
    mean, std = mean.to(device), std.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    def rows(x, index):
        return (x[..., index, :].to(device) - mean) / std

    with torch.enable_grad():
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(train_y), generator=generator)
            for start in range(0, len(order), batch_size):
                index = order[start:start + batch_size]
                loss = loss_fn(model(rows(train_x, index)), train_y[index].to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    model.eval()

    @torch.no_grad()
    def accuracy(x, y):
        correct = 0
        for start in range(0, len(y), eval_batch_size):
            index = torch.arange(start, min(start + eval_batch_size, len(y)))
            correct += int((model(rows(x, index)).argmax(-1).cpu() == y[index]).sum())
        return correct / len(y)

    return {"test_accuracy": accuracy(test_x, test_y), "train_accuracy": accuracy(train_x, train_y),
            "layer_weights": model.layer_weights()}


# ---------------------------------------------------------------- comparison


def _aligned(features, utterances):
    pairs = [align_labels(x, u.labels) for x, u in zip(features, utterances)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _probes(probe):
    names = (probe,) if isinstance(probe, str) else tuple(probe)
    if not names or any(name not in PROBES for name in names):
        raise ValueError(f"probe {probe!r}: expected one or more of {PROBES}")
    return names


def _score_features(features, task, probes, **options):
    """``{probe: train_frame_probe result}`` for ``{split: [features]}``."""
    train_x, train_y = _aligned(features["train"], task.train)
    test_x, test_y = _aligned(features["test"], task.test)
    return {name: train_frame_probe(train_x, train_y, test_x, test_y, task.num_classes, name, **options)
            for name in probes}


def score_backbone(backbone, task, layer="weighted", probe="linear", device=None, **options):
    """``{probe: train_frame_probe result}`` of ``backbone``'s frozen frames
    (``backbone_frame_features``) on ``task``; ``options``: of
    ``train_frame_probe``."""
    features = {name: backbone_frame_features(backbone, [u.waveform for u in task.split(name)], layer, device)
                for name in SPLIT_FILES}
    return _score_features(features, task, _probes(probe), device=device or "cpu", **options)


def score_fbank(task, probe="linear", **options):
    """``{probe: train_frame_probe result}`` of the stacked log-mel baseline
    (``PhoneTask.fbank_features``, computed once per task)."""
    features = {name: task.fbank_features(name) for name in SPLIT_FILES}
    return _score_features(features, task, _probes(probe), **options)


def chance_accuracy(task):
    """Test frame accuracy of always answering the train frames' most frequent
    phone (frames as a wav2vec2 CNN gives them)."""
    def labels(utterances):
        return torch.cat([u.labels[1::2][:backbone_frame_count(len(u.waveform))] for u in utterances])

    train, test = labels(task.train), labels(task.test)
    if len(train) == 0 or len(test) == 0:
        return None
    return float((test == torch.bincount(train).argmax()).float().mean())


def _spread(seeds, accuracies):
    if not accuracies:
        return None
    mean = sum(accuracies) / len(accuracies)
    std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1)) if len(accuracies) > 1 else 0.0
    return {"seeds": list(seeds), "accuracy": accuracies, "best": max(accuracies), "min": min(accuracies),
            "max": max(accuracies), "mean": mean, "std": std}


def _points(a, b):
    return None if a is None or b is None else 100.0 * (a - b)


def compare_phone_probe(backbone, task, random_seeds=(0, 1, 2), layer="weighted", probe="linear", seed=0,
                        device=None, cache=None, **options):
    """Frame phone accuracy of ``backbone``, of random networks of its shape
    (``random_like(backbone, s)`` for ``s`` in ``random_seeds``) and of the
    filter-bank baseline, each with the same probe (``seed``, ``options``:
    ``epochs``, ``lr``, ``batch_size``, ``hidden_size`` of
    ``train_frame_probe``).

    ``probe``: ``linear``, ``mlp`` or a sequence of them (features are
    computed once per network). ``cache``: an optional dict kept between
    calls (several checkpoints, one task and one set of options): the
    filter-bank scores, and those of random networks of a config seen
    before, are then reused.

    Returns
    -------
    dict (JSON-serialisable)
        ``layer``, ``seed``, ``chance``, ``train_frames`` / ``test_frames``
        (the pre-trained network's), the task's ``summary()``, and
        ``probes[name]``: ``pretrained``, ``fbank`` (test accuracies),
        ``random`` (``seeds``, ``accuracy`` per seed, ``best``, ``min``,
        ``max``, ``mean``, ``std``; None without seeds),
        ``margin_over_random`` and ``margin_over_fbank`` (percentage points
        of the pre-trained network over the best random one and over the
        filter banks), ``train_accuracy`` of each, and ``layer_weights`` of
        the pre-trained network's weighted sum (None for one layer).
    """
    _check_layer(layer)
    probes = _probes(probe)
    cache = {} if cache is None else cache
    settings = (id(task), layer, seed, tuple(sorted(options.items())))

    def cached(key, compute):
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    pretrained = score_backbone(backbone, task, layer, probes, device, seed=seed, **options)
    fbank = {name: cached(("fbank", name, settings[0], seed, tuple(sorted(options.items()))),
                          lambda name=name: score_fbank(task, name, seed=seed, **options)[name])
             for name in probes}
    config_key = (type(backbone).__name__, repr(sorted(backbone.config.to_dict().items())))
    random_scores = {}
    for random_seed in random_seeds:
        key = ("random", config_key, random_seed, settings, probes)
        random_scores[random_seed] = cached(key, lambda s=random_seed: score_backbone(
            random_like(backbone, s), task, layer, probes, device, seed=seed, **options))
    frames = {name: sum(min(backbone_frame_count(len(u.waveform)), len(u.labels) // 2)
                        for u in task.split(name)) for name in SPLIT_FILES}
    result = {"layer": layer, "seed": seed, "chance": chance_accuracy(task),
              "train_frames": frames["train"], "test_frames": frames["test"], **task.summary(),
              "probes": {}}
    for name in probes:
        accuracy = pretrained[name]["test_accuracy"]
        spread = _spread(random_seeds, [random_scores[s][name]["test_accuracy"] for s in random_seeds])
        result["probes"][name] = {
            "pretrained": accuracy,
            "random": spread,
            "fbank": fbank[name]["test_accuracy"],
            "margin_over_random": _points(accuracy, spread and spread["best"]),
            "margin_over_fbank": _points(accuracy, fbank[name]["test_accuracy"]),
            "train_accuracy": {"pretrained": pretrained[name]["train_accuracy"],
                               "fbank": fbank[name]["train_accuracy"],
                               "random": [random_scores[s][name]["train_accuracy"] for s in random_seeds]},
            "layer_weights": pretrained[name]["layer_weights"],
        }
    return result


# ---------------------------------------------------------------- command line


def format_table(name, result):
    """The lines printed for one checkpoint's ``compare_phone_probe`` result."""
    lines = [f"{'network':<44} {'probe':<7} {'layer':<9} accuracy"]
    layer = str(result["layer"])
    for probe, r in result["probes"].items():
        lines.append(f"{name[-44:]:<44} {probe:<7} {layer:<9} {r['pretrained']:.4f}")
        if r["random"]:
            for s, acc in zip(r["random"]["seeds"], r["random"]["accuracy"]):
                lines.append(f"{f'random init (seed {s})':<44} {probe:<7} {layer:<9} {acc:.4f}")
        lines.append(f"{f'fbank ({2 * FBANK_MELS}-d, stacked 10 ms frames)':<44} {probe:<7} {'-':<9} "
                     f"{r['fbank']:.4f}")
    for probe, r in result["probes"].items():
        spread = r["random"]
        random_part = (f"random best {spread['best']:.4f} (min {spread['min']:.4f}, max {spread['max']:.4f}, "
                       f"std {spread['std']:.4f} over {len(spread['seeds'])} seeds); "
                       f"pre-trained {r['margin_over_random']:+.2f} points over the best random, "
                       if spread else "")
        chance = f"; chance {result['chance']:.4f}" if result["chance"] is not None else ""
        lines.append(f"[{probe}] {random_part}{r['margin_over_fbank']:+.2f} over fbank{chance}")
    return lines


def _layer(value):
    if value == "weighted":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'weighted' or an int, got {value!r}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_ext.analysis.phone_probe",
        description="Frame phone classification on frozen features: checkpoints vs random networks of "
                    "their shape vs log-mel filter banks, on CPC-format phone alignments.")
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                        help="anything speechbrain_ext.load_backbone reads (save folder, CKPT+* folder, "
                             "backbone file, HF folder, fairseq .pt)")
    parser.add_argument("--data_folder", required=True, help="holds LibriSpeech/")
    parser.add_argument("--alignments", help=f"default: DATA/LibriSpeech/{DEFAULT_ALIGNMENTS}")
    parser.add_argument("--librispeech", help="LibriSpeech root (default: DATA/LibriSpeech)")
    parser.add_argument("--subsets", nargs="+", default=list(DEFAULT_SUBSETS),
                        help="LibriSpeech subsets searched for each utterance's audio")
    parser.add_argument("--layer", type=_layer, default="weighted",
                        help="'weighted' (learned softmax sum of all hidden states) or an index into "
                             "hidden_states (0: CNN projection, -1: last layer)")
    parser.add_argument("--probe", choices=[*PROBES, "both"], default="linear")
    parser.add_argument("--random_seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="seeds of the random networks compared with (none: no random networks)")
    parser.add_argument("--max_train_utterances", type=int)
    parser.add_argument("--max_test_utterances", type=int)
    parser.add_argument("--max_train_seconds", type=float)
    parser.add_argument("--max_test_seconds", type=float)
    parser.add_argument("--seed", type=int, default=0, help="seeds the probes and the utterance subsets")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch_size", type=int, default=256, help="frames per probe update")
    parser.add_argument("--hidden_size", type=int, default=256, help="the mlp probe's hidden units")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    data = Path(args.data_folder)
    alignments = Path(args.alignments) if args.alignments else data / "LibriSpeech" / DEFAULT_ALIGNMENTS
    librispeech = Path(args.librispeech) if args.librispeech else data / "LibriSpeech"
    probes = PROBES if args.probe == "both" else (args.probe,)
    try:
        for checkpoint in args.checkpoints:
            if not Path(checkpoint).exists():
                raise CheckpointError(f"{checkpoint}: no such checkpoint file or folder")
        task = load_phone_task(alignments, librispeech, args.subsets, args.max_train_utterances,
                               args.max_test_utterances, args.max_train_seconds, args.max_test_seconds,
                               args.seed)
        options = dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, hidden_size=args.hidden_size)
        summary = task.summary()
        print(f"[phone probe] {alignments}: {summary['train_utterances']} train utterances "
              f"({summary['train_seconds']:.1f} s), {summary['test_utterances']} test "
              f"({summary['test_seconds']:.1f} s), {task.num_classes} classes", flush=True)
        cache, results = {}, {}
        for checkpoint in args.checkpoints:
            backbone = load_backbone(checkpoint)
            result = compare_phone_probe(backbone, task, tuple(args.random_seeds), args.layer, probes,
                                         args.seed, args.device, cache, **options)
            results[checkpoint] = result
            print("\n".join(format_table(checkpoint, result)), flush=True)
    except (FileNotFoundError, CheckpointError, ValueError) as err:  # AlignmentError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "alignments": str(alignments), "librispeech": str(librispeech), "layer": args.layer,
            "probes": list(probes), "random_seeds": args.random_seeds, "seed": args.seed, "options": options,
            "task": task.summary(), "checkpoints": results}, indent=2) + "\n")
        print(f"[phone probe] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
