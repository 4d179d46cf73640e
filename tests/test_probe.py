"""The frozen-feature linear probe of recipes/pretrain/probe.py."""
import math
from pathlib import Path

import pytest
import torch

from conftest import load_recipe_script
from speechbrain_ext.analysis.probe import (compare_ctc_with_random, compare_with_random, ctc_probe_loss,
                                            frame_features, pooled_features, random_like)
from speechbrain_ext.io.data import DataPreparationError
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

REPO = Path(__file__).resolve().parents[1]


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


def spelled_sequences(count, seed, informative):
    """Random 3-symbol transcripts (symbols 1-3, blank 0) and frames for
    them: each symbol held for 3 frames then one gap frame. Informative
    frames carry a one-hot of the symbol (plus noise); uninformative ones are
    noise of the same shape."""
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for _ in range(count):
        y = torch.randint(1, 4, (5,), generator=gen)
        labels = torch.cat([torch.tensor([int(s)] * 3 + [0]) for s in y])
        x = 0.3 * torch.randn(len(labels), 6, generator=gen)
        if informative:
            x[:, :4] += torch.nn.functional.one_hot(labels, 4).float()
        xs.append(x)
        ys.append(y)
    return xs, ys


def test_ctc_probe_scores_frames_that_carry_the_transcript_better():
    """The probe's held-out loss must tell frames that spell the transcript
    from noise, and training must lower it below an untrained head's."""
    scores = {}
    for informative in (True, False):
        xs, ys = spelled_sequences(40, seed=1, informative=informative)
        scores[informative] = ctc_probe_loss(xs[:30], ys[:30], xs[30:], ys[30:], num_classes=4,
                                             epochs=30, lr=0.05, batch_size=8)
    untrained = ctc_probe_loss(xs[:30], ys[:30], xs[30:], ys[30:], num_classes=4, epochs=0)
    assert scores[True]["test"] < 0.5 * scores[False]["test"]
    assert scores[True]["test"] < 0.3 * untrained["test"]
    # noise cannot be decoded: held-out loss stays far above the informative one
    assert scores[False]["test"] > 1.0


def test_frame_features_are_per_utterance_and_unpadded():
    torch.manual_seed(0)
    net = Wav2Vec2Backbone(Wav2Vec2Config.micro(extractor_mode="group_norm")).eval()
    short = torch.randn(4000)
    alone = frame_features(net, [short])[0]
    together = frame_features(net, [torch.randn(12000), short])
    assert together[0].shape == (37, net.config.dim) and together[1].shape == alone.shape
    assert torch.equal(alone, together[1])


def test_compare_ctc_with_random_is_deterministic_per_network():
    """A "pre-trained" network that is the seed-0 random network scores
    exactly as random seed 0: same features, same head initialisation."""
    config = Wav2Vec2Config.micro()
    xs, ys = spelled_sequences(6, seed=2, informative=True)
    task = {"train": [(torch.randn(8000 + 320 * i), y) for i, y in enumerate(ys[:4])],
            "test": [(torch.randn(8000), y) for y in ys[4:]]}
    seed0 = random_like(Wav2Vec2Backbone(config), seed=0)
    result = compare_ctc_with_random(seed0, task, num_classes=4, seed=0, random_seeds=2, epochs=2)
    assert len(result["random"]) == 2
    assert result["pretrained"] == result["random"][0]
    assert result["random"][0] != result["random"][1]
    assert all(math.isfinite(v) for v in [result["pretrained"], *result["random"]])


def test_probe_script_verdicts_and_missing_transcripts(tmp_path):
    probe = load_recipe_script(REPO / "recipes" / "pretrain" / "probe.py", "pretrain_probe_script")
    assert probe.verdict(2.9, [3.0, 3.1], higher_is_better=False) == "better than"
    assert probe.verdict(0.5, [0.4, 0.6], higher_is_better=True) == "within"
    assert probe.verdict(0.3, [0.4, 0.6], higher_is_better=True) == "worse than"
    (tmp_path / "train-clean-100" / "1" / "2").mkdir(parents=True)
    (tmp_path / "train-clean-100" / "1" / "2" / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(DataPreparationError,
                       match="1-2-0000.flac: listed in 1-2.trans.txt line 1 but the audio file is missing"):
        probe.transcript_task(tmp_path, probe.LetterVocabulary())
