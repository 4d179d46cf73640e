"""The frozen-feature linear probe of recipes/pretrain/probe.py."""
import math

import torch

from speechbrain_ext.analysis.probe import compare_with_random, pooled_features
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config


def tone_or_noise_task(n_per_class=12, seed=0):
    """Two separable classes: a 440 Hz tone and white noise (0.5 s each)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(8000) / 16000.0
    items = []
    for i in range(n_per_class):
        phase = float(torch.rand(1, generator=gen)) * 2 * math.pi
        items.append((0.3 * torch.sin(2 * math.pi * 440 * t + phase), "tone"))
        items.append((0.3 * torch.randn(8000, generator=gen), "noise"))
    return {"train": items[: len(items) // 2], "test": items[len(items) // 2:]}


def test_pooled_features_do_not_depend_on_the_other_utterances():
    """No zero padding: a group_norm CNN normalises over time, padding included."""
    torch.manual_seed(0)
    net = Wav2Vec2Backbone(Wav2Vec2Config.micro(extractor_mode="group_norm")).eval()
    short, long = torch.randn(4000), torch.randn(12000)
    alone = pooled_features(net, [short])
    mixed = pooled_features(net, [long, short, torch.randn(4000)])
    assert mixed.shape == (3, net.config.dim)
    assert abs(alone[0] - mixed[1]).max() < 1e-5
    # what padding would have done
    padded = torch.zeros(2, 12000)
    padded[0, :4000], padded[1] = short, long
    with torch.no_grad():
        out = net(padded, torch.tensor([4000 / 12000, 1.0]))
    mask = out.frame_mask[0]
    padded_row = torch.stack([h[0][mask].mean(0) for h in out.hidden_states]).mean(0).numpy()
    assert abs(alone[0] - padded_row).max() > 1e-3


def test_compare_with_random_probes_several_random_networks():
    torch.manual_seed(0)
    net = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
    result = compare_with_random(net, tone_or_noise_task(), seed=0, random_seeds=3)
    assert result["chance"] == 0.5
    assert len(result["random"]) == 3
    # tone vs noise is linearly separable from any of these networks' features
    assert result["pretrained"] >= 0.9
    assert all(acc >= 0.9 for acc in result["random"])
