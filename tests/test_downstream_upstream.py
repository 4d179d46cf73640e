"""The shared downstream pieces: the upstream (frozen weighted sum, unfrozen
fine-tuning, feature cache), metrics (EER, fold averaging), the results file
and its table, and the bad-input errors raised before training."""
import json
import math

import numpy as np
import pytest
import torch

from speechbrain_ext.downstream import Upstream
from speechbrain_ext.downstream.metrics import average_folds, cosine_scores, equal_error_rate
from speechbrain_ext.downstream.recipe import (UnseenLabelError, audio_dataset, label_encoder,
                                               require_manifest)
from speechbrain_ext.downstream.results import (append_result, format_table, pretraining_hours,
                                                read_results)
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config


@pytest.fixture(scope="module")
def micro_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = Wav2Vec2Backbone(Wav2Vec2Config.micro())
    return save_backbone(model, tmp_path_factory.mktemp("bb") / "backbone.ckpt"), model


def test_frozen_upstream_is_a_softmax_weighted_sum_of_every_hidden_state(micro_ckpt):
    path, model = micro_ckpt
    upstream = Upstream(path, freeze=True)
    with torch.no_grad():
        upstream.layer_sum.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    wav, lens = torch.randn(2, 12000), torch.tensor([1.0, 0.6])
    upstream.train()  # a frozen backbone must stay in eval mode (no dropout)
    feats, rel = upstream(wav, lens)
    out = model.eval()(wav, lens)
    weights = torch.softmax(torch.tensor([0.5, -1.0, 2.0]), 0)
    # padded frames are zeroed (so cached and computed batches agree)
    expected = sum(w * h for w, h in zip(weights, out.hidden_states)) * out.frame_mask[..., None]
    assert out.frame_mask[1].sum() < out.frame_mask.shape[1]
    assert len(out.hidden_states) == 3  # CNN projection + 2 layers
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rel, out.frame_mask.sum(1).float() / feats.shape[1])
    feats.sum().backward()
    assert all(p.grad is None for p in upstream.backbone.parameters())
    assert upstream.layer_sum.weights.grad is not None
    assert not upstream.backbone.training


def test_unfrozen_upstream_trains_all_but_the_cnn(micro_ckpt):
    path, _ = micro_ckpt
    upstream = Upstream(path, freeze=False).train()
    assert upstream.combine == "last" and upstream.layer_sum is None
    feats, _ = upstream(torch.randn(2, 8000))
    feats.pow(2).mean().backward()
    cnn = list(upstream.backbone.feature_extractor.parameters())
    assert cnn and all(p.grad is None and not p.requires_grad for p in cnn)
    rest = [p for n, p in upstream.backbone.named_parameters()
            if not n.startswith("feature_extractor.") and n != "masked_spec_embed"]
    assert all(p.grad is not None for p in rest)
    assert upstream.backbone.training and not upstream.backbone.feature_extractor.training
    assert {id(p) for p in upstream.backbone_parameters()} == {id(p) for p in
                                                              upstream.backbone.parameters()
                                                              if p.requires_grad}


def test_feature_cache_gives_the_backbone_features_and_skips_it(micro_ckpt, tmp_path, monkeypatch):
    path, _ = micro_ckpt
    wav, lens = torch.randn(3, 16000), torch.tensor([1.0, 0.7, 0.4])
    ids = ["a/1", "b", "c"]
    reference = Upstream(path, freeze=True)
    cached = Upstream(path, freeze=True, cache_folder=tmp_path, cache_dtype=torch.float32)
    expected, expected_lens = reference(wav, lens)
    first, _ = cached(wav, lens, ids)
    assert (cached.cache_hits, cached.cache_misses) == (0, 3)
    calls = []
    monkeypatch.setattr(cached.backbone, "forward", lambda *a, **k: calls.append(1))
    cached.reset_cache_stats()
    second, second_lens = cached(wav, lens, ids)
    assert not calls and (cached.cache_hits, cached.cache_misses) == (3, 0)
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(second, expected)
    torch.testing.assert_close(second_lens, expected_lens)
    # the same ids with other audio lengths (another crop): stale entries recomputed
    monkeypatch.undo()
    cropped, cropped_lens = wav[:, :12000], torch.tensor([1.0, 0.7, 0.4])
    cached.reset_cache_stats()
    third, _ = cached(cropped, cropped_lens, ids)
    assert (cached.cache_hits, cached.cache_misses) == (0, 3)
    torch.testing.assert_close(third, reference(cropped, cropped_lens)[0])
    # another checkpoint (here: a random init) never reads these features
    other = Upstream(path, freeze=True, cache_folder=tmp_path, random_init=True, seed=5)
    assert not torch.equal(other.backbone.encoder.layers[0].attention.q_proj.weight,
                           cached.backbone.encoder.layers[0].attention.q_proj.weight)
    assert other.cache.folder != cached.cache.folder
    with pytest.raises(ValueError, match="freeze=True"):
        Upstream(path, freeze=False, cache_folder=tmp_path)


def test_sewd_upstream_at_the_cnn_frame_rate(tmp_path):
    """SEW-D squeezes time inside its encoder; the upstream still gives one
    feature per CNN frame (every hidden state is upsampled back)."""
    from speechbrain_ext.models.registry import build_backbone
    from speechbrain_ext.models.zoo import zoo_config

    torch.manual_seed(0)
    model = build_backbone(zoo_config("sewd_micro")).eval()
    path = save_backbone(model, tmp_path / "backbone.ckpt")
    upstream = Upstream(path, freeze=True, backbone_config={"zoo": "sewd_micro"})
    with torch.no_grad():
        upstream.layer_sum.weights.copy_(torch.linspace(-1, 1, model.num_hidden_states))
    wav, lens = torch.randn(2, 16000), torch.tensor([1.0, 0.55])
    feats, rel = upstream(wav, lens)
    out = model(wav, lens)
    frames = model.frame_lengths(torch.tensor([16000, 8800]))
    assert feats.shape == (2, int(frames[0]), model.config.dim) == out.hidden_states[0].shape
    assert out.extra["squeezed_hidden_states"][0].shape[1] < feats.shape[1]
    torch.testing.assert_close(rel * feats.shape[1], frames.float())
    weights = torch.softmax(torch.linspace(-1, 1, model.num_hidden_states), 0)
    expected = sum(w * h for w, h in zip(weights, out.hidden_states)) * out.frame_mask[..., None]
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-5)
    assert [n for n, p in upstream.named_parameters() if p.requires_grad] == ["layer_sum.weights"]
    with pytest.raises(CheckpointError, match="holds a 'sewd' backbone"):
        Upstream(path, backbone_config=Wav2Vec2Config.micro().to_dict())
    unfrozen = Upstream(path, freeze=False).train()
    feats, _ = unfrozen(wav, lens)
    feats.pow(2).mean().backward()
    assert all(p.grad is None for p in unfrozen.backbone.feature_extractor.parameters())
    # the last state (learned upsampling of the last layer) trains the whole encoder
    trained = [p.grad is not None for p in unfrozen.backbone.encoder.parameters()]
    assert trained and all(trained)


def test_checkpoint_of_another_architecture_fails_before_training(micro_ckpt):
    path, _ = micro_ckpt
    config = Wav2Vec2Config.micro(dim=96).to_dict()
    with pytest.raises(CheckpointError, match="dim: checkpoint 64 vs config 96"):
        Upstream(path, backbone_config=config)
    assert Upstream(path, backbone_config=Wav2Vec2Config.micro().to_dict()).output_dim == 64


def _independent_eer(positive, negative):
    """EER by linear interpolation where the miss and false-alarm curves cross."""
    thresholds = np.sort(np.concatenate([positive, negative]))
    miss = np.array([(positive < t).mean() for t in thresholds])
    false_alarm = np.array([(negative >= t).mean() for t in thresholds])
    i = np.argmax(miss >= false_alarm)  # first threshold where miss overtakes false alarm
    if i == 0:
        return (miss[0] + false_alarm[0]) / 2
    d0, d1 = false_alarm[i - 1] - miss[i - 1], false_alarm[i] - miss[i]
    frac = d0 / (d0 - d1)
    return miss[i - 1] + frac * (miss[i] - miss[i - 1])


def test_equal_error_rate_against_an_independent_computation():
    assert equal_error_rate(torch.tensor([0.9, 0.6, 0.4, 0.3, 0.5, 0.2, 0.1, 0.05]),
                            torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])) == pytest.approx(0.25)
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for n_pos, n_neg, gap in ((200, 300, 1.0), (150, 400, 2.0), (300, 300, 0.3)):
        positive, negative = rng.normal(gap, 1, n_pos), rng.normal(0, 1, n_neg)
        scores = np.concatenate([positive, negative])
        labels = np.array([1] * n_pos + [0] * n_neg)
        ours = equal_error_rate(torch.tensor(scores), torch.tensor(labels))
        assert ours == pytest.approx(_independent_eer(positive, negative),
                                     abs=1.5 / min(n_pos, n_neg))
        assert 0.0 < ours < 0.5
    with pytest.raises(ValueError, match="both target"):
        equal_error_rate([0.1, 0.2], [1, 1])


def test_cosine_scores_and_fold_averaging():
    enrol, test = torch.randn(5, 7), torch.randn(5, 7)
    expected = [float(a @ b / (a.norm() * b.norm())) for a, b in zip(enrol, test)]
    torch.testing.assert_close(cosine_scores(enrol, 3 * test), torch.tensor(expected))
    assert average_folds({1: 50.0, 2: 60.0, 3: 40.0, 4: 70.0, 5: 55.0}) == pytest.approx(55.0)
    with pytest.raises(ValueError):
        average_folds([50.0, math.nan])


def test_results_file_and_table(tmp_path):
    ckpt = tmp_path / "save" / "CKPT+x"
    ckpt.mkdir(parents=True)
    (ckpt / "audio_counter.ckpt").write_text(repr(5400.0))
    (ckpt / "COMPLETE").write_text("")  # what SafeCheckpointer writes last
    assert pretraining_hours(tmp_path / "save") == pytest.approx(1.5)
    assert pretraining_hours(tmp_path) is None
    path = tmp_path / "results.jsonl"
    append_result(path, task="er", metric="acc", value=50.0, split="test", backbone="m",
                  frozen=True, steps=3, pretrain_hours=1.5)
    append_result(path, task="er", metric="acc", value=55.0, split="test", backbone="m",
                  frozen=True, steps=4)  # a later run replaces the cell
    append_result(path, task="asv", metric="eer", value=12.5, split="test", backbone="m",
                  frozen=False, label="model m")
    append_result(path, task="sf", metric="slot_error", value=9.0, split="test", backbone="m",
                  frozen=True)  # a secondary metric: not in Table 1
    records = read_results(path)
    assert [r["steps"] for r in records[:2]] == [3, 4] and records[0]["pretrain_hours"] == 1.5
    table = format_table(records, empty_columns=True).splitlines()  # paper 003's whole layout
    header = table[0].split(" | ")
    assert header[1:3] == ["KWS (12) Froz.", "KWS (12) Unfroz."] and len(header) == 15
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table[3:]}
    assert rows["m"][header.index("ER Froz.")] == "55.00"
    assert rows["m"][header.index("SF Froz.")] == "-"
    assert rows["model m"][header.index("ASV Unfroz.")] == "12.50"
    # by default only the columns some run filled (ER frozen, ASV unfrozen)
    table = format_table(records).splitlines()
    assert [t.strip("| ") for t in table[0].split(" | ")] == ["model", "ER Froz.", "ASV Unfroz."]
    assert table[3] == "| m | 55.00 | - |" and table[4] == "| model m | - | 12.50 |"
    with open(path, "a") as f:
        f.write("{broken\n")
    with pytest.raises(ValueError, match=r"results.jsonl:5"):
        read_results(path)
    with pytest.raises(ValueError, match="unknown task"):
        append_result(path, task="kws", metric="acc", value=1, split="test", backbone="m",
                      frozen=True)
    assert json.loads(path.read_text().splitlines()[0])["task"] == "er"


def test_missing_manifest_and_unseen_label_fail_clearly(tmp_path):
    from speechbrain_ext.io.data import DataPreparationError

    with pytest.raises(DataPreparationError, match="was not prepared; run\n  python -m data_prep"):
        require_manifest(tmp_path / "kws12_train.csv", "python -m data_prep.speech_commands ...")
    for split, rows in (("train", "a,1,x.wav,yes\nb,1,y.wav,no\n"), ("valid", "c,1,z.wav,no\n"),
                        ("test", "d,1,w.wav,maybe\ne,1,v.wav,yes\n")):
        (tmp_path / f"{split}.csv").write_text("ID,duration,wav,label\n" + rows)
    sets = {s: audio_dataset(tmp_path / f"{s}.csv", tmp_path, ["label"])
            for s in ("train", "valid", "test")}
    with pytest.raises(UnseenLabelError, match=r"test .*test.csv.*\['maybe'\]"):
        label_encoder(sets, "label")
    del sets["test"]
    with pytest.raises(ValueError, match="expects 3 classes"):
        label_encoder(sets, "label", expected=3)
    assert len(label_encoder(sets, "label", expected=2)) == 2
    with pytest.raises(Exception, match="lacks the columns"):
        audio_dataset(tmp_path / "train.csv", tmp_path, ["emotion"])
