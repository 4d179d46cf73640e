"""Linear probes of frozen backbone features: a cheap check that a
pre-trained network learned something a random one of the same shape has not.

Features: each hidden state (CNN projection and every layer) mean-pooled
over the utterance's frames, then averaged over states; a logistic
regression on standardised features is trained and tested on given splits.

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


def compare_with_random(backbone, task, seed=0, random_seeds=3):
    """Probe accuracy of ``backbone`` and of random networks of its shape.

    A single random initialisation is a noisy baseline (on the synthetic
    speaker task the accuracy of micro networks spans about 0.1 across
    seeds), so ``random_seeds`` networks (seeds ``seed``, ``seed + 1``, ...)
    are probed.

    ``task``: dict with ``train`` / ``test`` lists of (waveform, label).
    Returns ``{"pretrained": acc, "random": [acc per seed], "chance": 1 / classes}``."""
    def accuracy(net):
        feats = {split: pooled_features(net, [w for w, _ in task[split]]) for split in ("train", "test")}
        return probe_accuracy(feats["train"], [y for _, y in task["train"]],
                              feats["test"], [y for _, y in task["test"]], seed)

    return {"pretrained": accuracy(backbone),
            "random": [accuracy(random_like(backbone, seed + k)) for k in range(random_seeds)],
            "chance": 1.0 / len({y for _, y in task["train"]})}
