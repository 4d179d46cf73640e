"""The frame phone-classification probe (speechbrain_ext.analysis.phone_probe)
on a tiny LibriSpeech-like corpus whose "phones" are pure tones."""
import json
import math

import pytest
import soundfile as sf
import torch

from speechbrain_ext.analysis.phone_probe import (DEFAULT_ALIGNMENTS, align_labels, backbone_frame_features,
                                                  compare_phone_probe, fbank_frame_features, find_audio,
                                                  load_phone_task, main, train_frame_probe)
from speechbrain_ext.io.alignments import AlignmentError, read_alignments
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

PHONES = ["SIL", "A", "B", "C", "D"]
TONES = [None, 400.0, 800.0, 1600.0, 3200.0]  # Hz; SIL is faint noise
# speaker -> (subset, chapter, frequency factor, amplitude); 103 and 104 train, 105 test
SPEAKERS = {"103": ("train-clean-100", "1240", 1.00, 0.30),
            "104": ("train-clean-100", "2007", 1.04, 0.20),
            "105": ("dev-clean", "1300", 0.97, 0.25)}
UTTERANCES_PER_SPEAKER = 3


def synth_utterance(gen, factor, amplitude, label_frames=150):
    """A waveform of random "phones" (6-14 label frames each) and its 10 ms labels."""
    labels = []
    while len(labels) < label_frames:
        phone = int(torch.randint(0, len(PHONES), (1,), generator=gen))
        labels += [phone] * int(torch.randint(6, 15, (1,), generator=gen))
    labels = labels[:label_frames]
    pieces, start = [], 0
    while start < len(labels):
        end = start
        while end < len(labels) and labels[end] == labels[start]:
            end += 1
        t = torch.arange((end - start) * 160) / 16000.0
        tone = TONES[labels[start]]
        if tone is None:
            pieces.append(0.003 * torch.randn(len(t), generator=gen))
        else:
            phase = float(torch.rand(1, generator=gen)) * 2 * math.pi
            pieces.append(amplitude * torch.sin(2 * math.pi * tone * factor * t + phase)
                          + 0.003 * torch.randn(len(t), generator=gen))
        start = end
    return torch.cat(pieces), labels


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``(data folder, alignment folder)``: LibriSpeech/<subset>/<spk>/<chapter>/*.flac
    and LibriSpeech/LibriSpeech100_labels_split in CPC's format."""
    data = tmp_path_factory.mktemp("phone_data")
    root = data / "LibriSpeech"
    gen = torch.Generator().manual_seed(0)
    lines, train, test = [], [], []
    for speaker, (subset, chapter, factor, amplitude) in SPEAKERS.items():
        for k in range(UTTERANCES_PER_SPEAKER):
            uid = f"{speaker}-{chapter}-{k:04d}"
            wav, labels = synth_utterance(gen, factor, amplitude)
            folder = root / subset / speaker / chapter
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f"{uid}.flac", wav.numpy(), 16000)
            lines.append(uid + " " + " ".join(map(str, labels)))
            (test if speaker == "105" else train).append(uid)
    alignments = root / DEFAULT_ALIGNMENTS
    alignments.mkdir()
    (alignments / "converted_aligned_phones.txt").write_text("\n".join(lines) + "\n")
    (alignments / "train_split.txt").write_text("\n".join(train) + "\n")
    (alignments / "test_split.txt").write_text("\n".join(test) + "\n")
    (alignments / "phones.txt").write_text("\n".join(PHONES) + "\n")
    return data, alignments


@pytest.fixture(scope="module")
def task(corpus):
    data, alignments = corpus
    return load_phone_task(alignments, data / "LibriSpeech")


def copy_alignments(alignments, tmp_path):
    target = tmp_path / "labels"
    target.mkdir()
    for f in alignments.iterdir():
        (target / f.name).write_text(f.read_text())
    return target


def test_the_reader_parses_the_folder(corpus, task):
    _, alignments = corpus
    a = read_alignments(alignments)
    assert a.num_classes == 5 and a.phones == PHONES
    assert len(a.train_ids) == 6 and len(a.test_ids) == 3 and a.test_ids[0] == "105-1300-0000"
    assert all(len(v) == 150 for v in a.labels.values())
    assert len(task.train) == 6 and len(task.test) == 3
    assert all(len(u.waveform) == 150 * 160 and len(u.labels) == 150 for u in task.train + task.test)
    # without phones.txt (CPC's release): the largest index + 1
    (alignments.parent / "no_phones").mkdir()
    for name in ("converted_aligned_phones.txt", "train_split.txt", "test_split.txt"):
        (alignments.parent / "no_phones" / name).write_text((alignments / name).read_text())
    assert read_alignments(alignments.parent / "no_phones").phones is None
    assert read_alignments(alignments.parent / "no_phones").num_classes == 5


@pytest.mark.parametrize("line, message", [
    ("103-1240-0009", "expected '<utterance id> <phone index> ...'"),
    ("103-1240-0009 0 1 x 2", "phone index 'x' of 103-1240-0009 is not an integer"),
    ("103-1240-0009 0 -1 2", "negative phone index -1"),
    ("103_1240_0009 0 1 2", "is not a LibriSpeech utterance id"),
    ("103-1240-0000 0 1 2", "103-1240-0000 already aligned on line 1"),
    ("103-1240-0009 0 1 5", "phone index 5 in 103-1240-0009, but"),
])
def test_the_reader_rejects_a_malformed_line(corpus, tmp_path, line, message):
    folder = copy_alignments(corpus[1], tmp_path)
    path = folder / "converted_aligned_phones.txt"
    lines = path.read_text().splitlines()
    lines.insert(3, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AlignmentError, match=f"{path}:4: .*") as err:
        read_alignments(folder)
    assert message in str(err.value)


def test_a_split_id_without_alignment_or_in_both_splits_is_an_error(corpus, tmp_path):
    folder = copy_alignments(corpus[1], tmp_path)
    split = folder / "test_split.txt"
    original = split.read_text()
    split.write_text(original + "999-1-0001\n")
    with pytest.raises(AlignmentError, match=f"{split}:4: 999-1-0001 has no alignment in "
                                             f"{folder / 'converted_aligned_phones.txt'}"):
        read_alignments(folder)
    split.write_text(original + "103-1240-0001\n")
    with pytest.raises(AlignmentError, match=f"{split}:4: 103-1240-0001 is also in .*train_split.txt \\(line 2\\)"):
        read_alignments(folder)
    split.write_text("")
    with pytest.raises(AlignmentError, match="no utterance ids"):
        read_alignments(folder)
    (folder / "phones.txt").write_text("SIL\nA\nA\n")
    with pytest.raises(AlignmentError, match=f"{folder / 'phones.txt'}:3: phone 'A' already named on line 2"):
        read_alignments(folder)


def test_missing_audio_and_folders_are_named(corpus, tmp_path):
    data, _ = corpus
    with pytest.raises(FileNotFoundError, match="no audio for 105-1300-0000: .* none of .*train-clean-100/105/1300"):
        find_audio(data / "LibriSpeech", "105-1300-0000", subsets=("train-clean-100", "test-clean"))
    assert find_audio(data / "LibriSpeech", "105-1300-0000").parent.parent.parent.name == "dev-clean"
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}: no phone alignment folder"):
        read_alignments(tmp_path / "nowhere")


def test_limits_keep_a_seeded_subset(corpus):
    data, alignments = corpus
    small = load_phone_task(alignments, data / "LibriSpeech", max_train_utterances=2, max_test_seconds=2.0)
    assert len(small.train) == 2 and len(small.test) == 1  # 1.5 s each
    again = load_phone_task(alignments, data / "LibriSpeech", max_train_utterances=2, max_test_seconds=2.0)
    assert [u.uid for u in small.train] == [u.uid for u in again.train]


def test_fbank_frames_are_the_backbone_frames():
    torch.manual_seed(0)
    net = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
    from speechbrain.lobes.features import Fbank

    fbank = Fbank(n_mels=80)
    for samples in (400, 719, 720, 8000, 16000, 16159, 16321, 24000):
        wav = torch.randn(samples)
        (features,) = fbank_frame_features([wav])
        with torch.no_grad():
            frames = net(wav[None]).hidden_states[0].shape[1]
        assert features.shape == (frames, 160)
        mels = fbank(wav[None])[0]  # frame j centred on sample 160 j
        # frame t (centred on 320 t + 200) = 10 ms frames 2t+1 and 2t+2, centred on label frame 2t+1
        t = frames - 1
        assert torch.equal(features[t], torch.cat([mels[2 * t + 1], mels[2 * t + 2]]))
    (states,) = backbone_frame_features(net, [torch.randn(16000)])
    assert states.shape == (3, 49, 64)
    # frame t gets 10 ms label 2t+1; cut to the shorter
    x, y = align_labels(states, torch.arange(90))
    assert x.shape == (3, 45, 64) and y.tolist()[:3] == [1, 3, 5]
    with pytest.raises(ValueError, match="layer 3: the backbone has 3 hidden states"):
        backbone_frame_features(net, [torch.randn(8000)], layer=3)


def fbank_frames(task):
    out = {}
    for split in ("train", "test"):
        pairs = [align_labels(x, u.labels) for x, u in zip(task.fbank_features(split), task.split(split))]
        out[split] = (torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs]))
    return out


def test_a_linear_probe_on_fbank_tells_the_tones_apart(task):
    frames = fbank_frames(task)
    (train_x, train_y), (test_x, test_y) = frames["train"], frames["test"]
    chance = float((test_y == torch.bincount(train_y).argmax()).float().mean())
    r = train_frame_probe(train_x, train_y, test_x, test_y, 5, "linear", epochs=30, lr=1e-2, batch_size=32)
    print(f"fbank linear: test {r['test_accuracy']:.3f}, train {r['train_accuracy']:.3f}, chance {chance:.3f}")
    assert r["test_accuracy"] > 0.9 and r["test_accuracy"] > chance + 0.5
    shuffled = train_y[torch.randperm(len(train_y), generator=torch.Generator().manual_seed(1))]
    s = train_frame_probe(train_x, shuffled, test_x, test_y, 5, "linear", epochs=30, lr=1e-2, batch_size=32)
    print(f"fbank linear, shuffled train labels: test {s['test_accuracy']:.3f}")
    assert s["test_accuracy"] < chance + 0.15
    m = train_frame_probe(train_x, train_y, test_x, test_y, 5, "mlp", epochs=30, lr=1e-2, batch_size=32,
                          hidden_size=32)
    print(f"fbank mlp: test {m['test_accuracy']:.3f}")
    assert m["test_accuracy"] > 0.9


def test_compare_phone_probe_has_the_three_kinds_and_is_deterministic(task):
    torch.manual_seed(123)
    net = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
    options = dict(epochs=10, lr=1e-2, batch_size=32)
    result = compare_phone_probe(net, task, random_seeds=(0, 1, 2), **options)
    json.dumps(result)
    r = result["probes"]["linear"]
    print(f"compare (weighted, linear): net {r['pretrained']:.3f}, random {r['random']['accuracy']}, "
          f"fbank {r['fbank']:.3f}, chance {result['chance']:.3f}, weights {r['layer_weights']}")
    assert result["test_frames"] == 3 * 74 and result["train_frames"] == 6 * 74
    assert r["random"]["seeds"] == [0, 1, 2] and len(r["random"]["accuracy"]) == 3
    assert r["random"]["best"] == r["random"]["max"] == max(r["random"]["accuracy"])
    assert r["random"]["min"] <= r["random"]["mean"] <= r["random"]["max"] and r["random"]["std"] >= 0
    assert r["margin_over_random"] == pytest.approx(100 * (r["pretrained"] - r["random"]["best"]))
    assert r["margin_over_fbank"] == pytest.approx(100 * (r["pretrained"] - r["fbank"]))
    assert r["fbank"] > 0.9 and len(r["layer_weights"]) == 3
    assert abs(sum(r["layer_weights"]) - 1) < 1e-5
    assert 0 <= r["pretrained"] <= 1 and result["chance"] < 0.5
    again = compare_phone_probe(net, task, random_seeds=(0, 1, 2), **options)
    assert again == result
    # one layer, both probes, a cache shared between calls
    cache = {}
    one = compare_phone_probe(net, task, random_seeds=(0,), layer=-1, probe=("linear", "mlp"),
                              cache=cache, hidden_size=16, **options)
    assert sorted(one["probes"]) == ["linear", "mlp"] and one["probes"]["mlp"]["layer_weights"] is None
    assert one == compare_phone_probe(net, task, random_seeds=(0,), layer=-1, probe=("linear", "mlp"),
                                      cache=cache, hidden_size=16, **options)


def test_the_command_line_writes_json(corpus, tmp_path, capsys):
    data, _ = corpus
    torch.manual_seed(0)
    checkpoint = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tmp_path / "micro.ckpt")
    torch.manual_seed(5)
    other = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tmp_path / "other.ckpt")
    out = tmp_path / "probe.json"
    assert main([str(checkpoint), str(other), "--data_folder", str(data), "--probe", "both", "--random_seeds", "0", "1",
                 "--epochs", "5", "--lr", "0.01", "--batch_size", "32", "--hidden_size", "16",
                 "--max_train_utterances", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "random init (seed 1)" in printed and "fbank (160-d" in printed and "over fbank" in printed
    written = json.loads(out.read_text())
    result = written["checkpoints"][str(checkpoint)]
    assert written["task"]["train_utterances"] == 4 and written["task"]["test_utterances"] == 3
    assert sorted(result["probes"]) == ["linear", "mlp"]
    assert len(result["probes"]["mlp"]["random"]["accuracy"]) == 2
    # the checkpoint is random seed 0's network (same seed, same class): the same score
    assert result["probes"]["linear"]["pretrained"] == result["probes"]["linear"]["random"]["accuracy"][0]
    assert result["probes"]["linear"]["margin_over_random"] <= 0
    # the second checkpoint: same random networks and filter banks (reused), its own score
    second = written["checkpoints"][str(other)]["probes"]["linear"]
    assert second["random"] == result["probes"]["linear"]["random"]
    assert second["fbank"] == result["probes"]["linear"]["fbank"]


def test_the_command_line_names_a_missing_folder_or_checkpoint(corpus, tmp_path, capsys):
    data, _ = corpus
    checkpoint = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tmp_path / "micro.ckpt")
    assert main([str(checkpoint), "--data_folder", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{tmp_path / 'LibriSpeech' / DEFAULT_ALIGNMENTS}: no phone alignment folder" in err
    assert main([str(tmp_path / "missing.ckpt"), "--data_folder", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'missing.ckpt'}: no such checkpoint" in err
