"""Linear probes of frozen backbone features: a cheap check that a
pre-trained network learned something a random one of the same shape has not.

Features: each hidden state (CNN projection and every layer) mean-pooled
over the utterance's valid frames, then averaged over states; a logistic
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
    """``[N, D]`` numpy array: per utterance, the mean over valid frames of
    each hidden state, averaged over states. ``waveforms``: 1-D tensors."""
    backbone.eval()
    rows = []
    for start in range(0, len(waveforms), batch_size):
        chunk = waveforms[start:start + batch_size]
        longest = max(len(w) for w in chunk)
        wav = torch.zeros(len(chunk), longest)
        for i, w in enumerate(chunk):
            wav[i, :len(w)] = w
        lens = torch.tensor([len(w) / longest for w in chunk])
        out = backbone(wav, lens)
        mask = out.frame_mask[..., None].float()
        pooled = [(h * mask).sum(1) / mask.sum(1).clamp(min=1) for h in out.hidden_states]
        rows.append(torch.stack(pooled).mean(0))
    return torch.cat(rows).numpy()


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


def compare_with_random(backbone, task, seed=0):
    """Probe accuracy of ``backbone`` and of a random network of its shape.

    ``task``: dict with ``train`` / ``test`` lists of (waveform, label).
    Returns ``{"pretrained": acc, "random": acc, "chance": 1 / classes}``."""
    results = {}
    for name, net in (("pretrained", backbone), ("random", random_like(backbone, seed))):
        feats = {split: pooled_features(net, [w for w, _ in task[split]]) for split in ("train", "test")}
        results[name] = probe_accuracy(feats["train"], [y for _, y in task["train"]],
                                       feats["test"], [y for _, y in task["test"]], seed)
    results["chance"] = 1.0 / len({y for _, y in task["train"]})
    return results
