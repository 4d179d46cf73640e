"""Linear probes of frozen backbone features: a cheap check that a
pre-trained network learned something a random one of the same shape has not.

Features are the hidden states (CNN projection and every layer) averaged
over states, computed one utterance at a time (no padding). Two probes:

* utterance classification (speaker, keyword): the features mean-pooled over
  frames, a logistic regression on standardised features, scored by accuracy;
* characters (SUPERB's linear PR/ASR probe in miniature): a linear CTC head
  on the standardised frame features, trained for a fixed budget, scored by
  the held-out CTC loss per character (lower is better). It asks whether the
  frames carry the transcript's content, which mean pooling discards.

Example
-------
>>> import torch
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
>>> net = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
>>> pooled_features(net, [torch.randn(8000), torch.randn(16000)]).shape
(2, 64)
"""
import copy

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def pooled_features(backbone, waveforms, batch_size=16):
    """``[N, D]`` numpy array: per utterance, the mean over frames of each
    hidden state, averaged over states. ``waveforms``: 1-D tensors.

    Only waveforms of the same length share a batch: zero padding would
    change a group_norm CNN's statistics (GroupNorm runs over time)."""
    backbone.eval()
    by_length = {}
    for index, wav in enumerate(waveforms):
        by_length.setdefault(len(wav), []).append(index)
    rows = [None] * len(waveforms)
    for indices in by_length.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            out = backbone(torch.stack([waveforms[i] for i in chunk]))
            pooled = torch.stack([h.mean(1) for h in out.hidden_states]).mean(0)
            for i, row in zip(chunk, pooled):
                rows[i] = row
    return torch.stack(rows).numpy()


@torch.no_grad()
def frame_features(backbone, waveforms):
    """Per utterance a ``[frames, D]`` tensor: the hidden states averaged over
    states. Each utterance runs alone (no padding, see :func:`pooled_features`).

    >>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
    >>> net = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
    >>> [tuple(f.shape) for f in frame_features(net, [torch.randn(8000), torch.randn(16000)])]
    [(24, 64), (49, 64)]
    """
    backbone.eval()
    return [torch.stack(backbone(wav[None]).hidden_states).mean(0)[0] for wav in waveforms]


def ctc_probe_loss(train_x, train_y, test_x, test_y, num_classes, epochs=15, lr=0.01,
                   batch_size=16, seed=0):
    """Held-out CTC loss per target symbol of a linear head on frozen frames.

    The head (``Linear(D, num_classes)``, blank = 0) sees features
    standardised with the training frames' statistics and is trained with
    Adam for a fixed number of epochs, the same budget for every network.

    Arguments
    ---------
    train_x, test_x : list of torch.Tensor
        ``[frames, D]`` features per utterance.
    train_y, test_y : list of torch.LongTensor
        ``[symbols]`` target indices per utterance (no blanks).
    num_classes : int
        Output size, blank included.

    Returns
    -------
    dict
        ``{"train": loss, "test": loss}``, CTC negative log-likelihood summed
        over utterances and divided by the number of target symbols.

    Example
    -------
    >>> gen = torch.Generator().manual_seed(0)
    >>> ys = [torch.randint(1, 4, (6,), generator=gen) for _ in range(8)]
    >>> noise = [torch.randn(30, 8, generator=gen) for _ in ys]
    >>> r = ctc_probe_loss(noise[:6], ys[:6], noise[6:], ys[6:], num_classes=4, epochs=2)
    >>> sorted(r), r["test"] > 0
    (['test', 'train'], True)
    """
    frames = torch.cat(train_x)
    mean, std = frames.mean(0), frames.std(0) + 1e-5
    train_x = [(x - mean) / std for x in train_x]
    test_x = [(x - mean) / std for x in test_x]
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(frames.shape[1], num_classes)
    with torch.no_grad():  # a seeded init, independent of the global RNG
        bound = frames.shape[1] ** -0.5
        head.weight.copy_(torch.rand(head.weight.shape, generator=generator) * 2 * bound - bound)
        head.bias.zero_()
    ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)

    def loss_per_symbol(xs, ys):
        log_probs = head(nn.utils.rnn.pad_sequence(xs, batch_first=True)).log_softmax(-1)
        total = ctc(log_probs.transpose(0, 1), torch.cat(ys),
                    torch.tensor([len(x) for x in xs]), torch.tensor([len(y) for y in ys]))
        return total / sum(len(y) for y in ys)

    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(train_x), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                loss = loss_per_symbol([train_x[i] for i in chunk], [train_y[i] for i in chunk])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    with torch.no_grad():
        return {"train": float(loss_per_symbol(train_x, train_y)),
                "test": float(loss_per_symbol(test_x, test_y))}


def probe_accuracy(train_x, train_y, test_x, test_y, seed=0):
    """Accuracy of a logistic regression trained on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    clf.fit(train_x, train_y)
    return float((clf.predict(test_x) == np.asarray(test_y)).mean())


def random_like(backbone, seed=0):
    """A freshly initialised network of the same class and config."""
    torch.manual_seed(seed)
    return type(backbone)(copy.deepcopy(backbone.config)).eval()


def _score_with_random(backbone, score, seed, random_seeds):
    """``score(net)`` for ``backbone`` and for ``random_seeds`` random networks
    of its shape (seeds ``seed``, ``seed + 1``, ...).

    A single random initialisation is a noisy baseline (on the synthetic
    speaker task the accuracy of micro networks spans about 0.1 across
    seeds), hence several."""
    return {"pretrained": score(backbone),
            "random": [score(random_like(backbone, seed + k)) for k in range(random_seeds)]}


def compare_with_random(backbone, task, seed=0, random_seeds=3):
    """Probe accuracy of ``backbone`` and of random networks of its shape.

    ``task``: dict with ``train`` / ``test`` lists of (waveform, label).
    Returns ``{"pretrained": acc, "random": [acc per seed], "chance": 1 / classes}``."""
    def accuracy(net):
        feats = {split: pooled_features(net, [w for w, _ in task[split]]) for split in ("train", "test")}
        return probe_accuracy(feats["train"], [y for _, y in task["train"]],
                              feats["test"], [y for _, y in task["test"]], seed)

    result = _score_with_random(backbone, accuracy, seed, random_seeds)
    result["chance"] = 1.0 / len({y for _, y in task["train"]})
    return result


def compare_ctc_with_random(backbone, task, num_classes, seed=0, random_seeds=3, **ctc_options):
    """Held-out CTC loss per symbol (:func:`ctc_probe_loss`) of ``backbone``
    and of random networks of its shape.

    ``task``: dict with ``train`` / ``test`` lists of (waveform, target
    indices). Returns ``{"pretrained": loss, "random": [loss per seed]}``;
    lower is better."""
    def held_out_loss(net):
        feats = {split: frame_features(net, [w for w, _ in task[split]]) for split in ("train", "test")}
        return ctc_probe_loss(feats["train"], [y for _, y in task["train"]],
                              feats["test"], [y for _, y in task["test"]],
                              num_classes, seed=seed, **ctc_options)["test"]

    return _score_with_random(backbone, held_out_loss, seed, random_seeds)
