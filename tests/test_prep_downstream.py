"""Downstream preparations (Speech Commands, Timers and Such, IEMOCAP,
VoxCeleb1, Fluent Speech Commands, Common Voice zh-CN, LibriSpeech phonemes):
manifests checked against the files on disk and the corpus metadata, and the
bad-input policy on broken copies of the synthetic corpora."""
import ast
import csv
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import (common_voice, fluent_speech, iemocap, librispeech_phonemes, speech_commands,
                       timers_and_such, voxceleb)
from data_prep.common_voice import prepare_common_voice
from data_prep.fluent_speech import prepare_fluent_speech
from data_prep.iemocap import prepare_iemocap
from data_prep.librispeech_phonemes import prepare_librispeech_phonemes
from data_prep.speech_commands import prepare_speech_commands
from data_prep.timers_and_such import (SlotTagError, parse_slot_transcript, prepare_timers_and_such,
                                       tag_transcript)
from data_prep.voxceleb import prepare_voxceleb
from speechbrain_ext.io.data import DataPreparationError, read_csv

CORPORA = ["librispeech", "speech_commands", "timers_and_such", "iemocap", "voxceleb1",
           "fluent_speech_commands", "common_voice_zh"]
FOLDERS = {"sc": "speech_commands_v0.02", "tas": "timers-and-such",
           "iemocap": "IEMOCAP_full_release", "vox": "VoxCeleb1",
           "fsc": "fluent_speech_commands_dataset", "cv": "cv-corpus-zh-CN",
           "ls": "LibriSpeech"}
AUDIO = (".wav", ".flac", ".mp3")


@pytest.fixture(scope="module")
def root(mini_root):
    """The mini corpora (generated once, reused)."""
    from data_prep.synthetic import generate

    generate(mini_root, seed=0, size="mini", corpora=CORPORA, log=lambda *a: None)
    return mini_root


def folder(root, key):
    return root / FOLDERS[key]


# ------------------------------------------------------------------ helpers
def header(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def resolve(value, data_folder):
    assert value.startswith("$data_root/"), value
    return Path(value.replace("$data_root", str(data_folder)))


def check_manifest(path, data_folder, columns, sample_rate=16000):
    """Header, unique IDs, every file on disk with its true duration (the
    whole file, or the ``start``/``stop`` segment). Returns the rows."""
    assert header(path) == columns
    rows = read_csv(path)
    ids = [r["ID"] for r in rows]
    assert len(ids) == len(set(ids)), f"duplicate IDs in {path}"
    for row in rows:
        wav = resolve(row["wav"], data_folder)
        assert wav.is_file(), wav
        info = sf.info(str(wav))
        assert info.samplerate == sample_rate and info.channels == 1
        if "start" in row:
            start, stop = int(row["start"]), int(row["stop"])
            assert 0 <= start < stop <= info.frames
            frames = stop - start
        else:
            frames = info.frames
        assert float(row["duration"]) == pytest.approx(frames / sample_rate, abs=1e-6)
    return rows


def mirror(src, dst):
    """Copy of a corpus: folders and text files copied, audio symlinked (so
    a test can break files without touching the shared corpus)."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix in AUDIO:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
        elif path.name != ".synthetic.json":
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return dst


def make_empty(path):
    path.unlink()
    path.write_bytes(b"")


def make_8k(path, fmt="WAV"):
    path.unlink()
    sf.write(path, np.full(8000, 0.01, dtype=np.float32), 8000, format=fmt)


def assert_listed(err, expected):
    """Every ``(path, words)`` is on one line of the message."""
    lines = str(err.value).splitlines()
    for path, what in expected:
        assert any(str(path) in line and what in line for line in lines), (path, what,
                                                                            str(err.value))


def no_csv(folder):
    return not Path(folder).exists() or not list(Path(folder).glob("*.csv"))


def write_rows(path, fieldnames, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter=delimiter,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def table(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


# ------------------------------------------------------------ Speech Commands
SC_COMMANDS = set("yes no up down left right on off stop go".split())


def sc_lists(sc):
    return {split: set((sc / name).read_text().split())
            for split, name in (("valid", "validation_list.txt"), ("test", "testing_list.txt"))}


@pytest.fixture(scope="module")
def sc_prepared(root, tmp_path_factory):
    save = tmp_path_factory.mktemp("sc")
    result = prepare_speech_commands(folder(root, "sc"), save, num_workers=1, progress=False)
    return save, result


def test_speech_commands_35_classes(root, sc_prepared):
    sc, (save, result) = folder(root, "sc"), sc_prepared
    assert sorted(result.prepared) == sorted(f"kws{n}_{s}" for n in (12, 35)
                                             for s in ("train", "valid", "test"))
    clips = {p.relative_to(sc).as_posix() for p in sc.glob("[!_]*/*.wav")}
    lists = sc_lists(sc)
    expected = {"valid": lists["valid"], "test": lists["test"],
                "train": clips - lists["valid"] - lists["test"]}
    speakers = {}
    for split, rels in expected.items():
        rows = check_manifest(save / f"kws35_{split}.csv", sc, speech_commands.CSV_COLUMNS)
        got = {resolve(r["wav"], sc).relative_to(sc).as_posix() for r in rows}
        assert got == rels and rows
        for row in rows:
            word = resolve(row["wav"], sc).parent.name
            assert row["label"] == word and row["start"] == "0"
            assert int(row["stop"]) == sf.info(str(resolve(row["wav"], sc))).frames
        speakers[split] = {Path(r).name.split("_nohash_")[0] for r in rels}
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    labels = {r["label"] for r in read_csv(save / "kws35_train.csv")}
    assert labels == {p.name for p in sc.iterdir() if p.is_dir() and p.name[0] != "_"}
    assert len(labels) == 35


def test_speech_commands_12_classes_and_silence(root, sc_prepared):
    from speechbrain.dataio.dataio import read_audio

    sc, (save, _) = folder(root, "sc"), sc_prepared
    regions = {"train": (0.0, 0.8), "valid": (0.8, 0.9), "test": (0.9, 1.0)}
    for split in ("train", "valid", "test"):
        rows = check_manifest(save / f"kws12_{split}.csv", sc, speech_commands.CSV_COLUMNS)
        rows35 = {r["ID"]: r for r in read_csv(save / f"kws35_{split}.csv")}
        words = [r for r in rows if r["label"] != "_silence_"]
        # every clip kept (unknown="all"), mapped to its 12-class label
        assert {r["ID"] for r in words} == set(rows35)
        for row in words:
            word = rows35[row["ID"]]["label"]
            assert row["label"] == (word if word in SC_COMMANDS else "_unknown_")
        counts = Counter(r["label"] for r in rows)
        assert set(counts) == SC_COMMANDS | {"_unknown_", "_silence_"}
        average = round(sum(counts[w] for w in SC_COMMANDS) / 10)
        assert counts["_silence_"] == average > 0
        assert counts["_unknown_"] == sum(1 for r in rows35.values()
                                          if r["label"] not in SC_COMMANDS)
        for row in (r for r in rows if r["label"] == "_silence_"):
            wav = resolve(row["wav"], sc)
            assert wav.parent.name == "_background_noise_"
            start, stop = int(row["start"]), int(row["stop"])
            assert stop - start == 16000 and row["duration"] == "1.0"
            # the crop lies in the split's region of the noise file
            frames = sf.info(str(wav)).frames
            low, high = regions[split]
            assert int(low * frames) <= start and stop <= int(high * frames)
            sig = read_audio({"file": str(wav), "start": start, "stop": stop})
            assert sig.shape == (16000,)
            ref, _ = sf.read(str(wav), start=start, stop=stop, dtype="float32")
            assert np.allclose(sig.numpy(), ref, atol=1e-6) and ref.std() > 0


def test_speech_commands_unknown_average_and_reuse(root, tmp_path, sc_prepared):
    sc = folder(root, "sc")
    result = prepare_speech_commands(sc, tmp_path, num_classes=12, unknown="average",
                                     silence_per_split=3, num_workers=1, progress=False)
    again = prepare_speech_commands(sc, tmp_path, num_classes=12, unknown="average",
                                    silence_per_split=3, progress=False)
    assert again.prepared == [] and sorted(again.reused) == sorted(result.prepared)
    save, _ = sc_prepared
    for split in ("train", "valid", "test"):
        rows = read_csv(tmp_path / f"kws12_{split}.csv")
        full = read_csv(save / f"kws12_{split}.csv")
        counts = Counter(r["label"] for r in rows)
        assert counts["_silence_"] == 3
        assert counts["_unknown_"] == round(sum(counts[w] for w in SC_COMMANDS) / 10)
        assert {r["ID"] for r in rows if r["label"] == "_unknown_"} <= \
            {r["ID"] for r in full if r["label"] == "_unknown_"}


def test_speech_commands_bad_inputs(root, tmp_path):
    sc = mirror(folder(root, "sc"), tmp_path / "sc")
    lists = sc_lists(sc)
    valid_clip = sc / sorted(lists["valid"])[0]
    test_clip = sc / sorted(lists["test"])[0]
    train_clip = sorted(p for p in (sc / "yes").glob("*.wav")
                        if f"yes/{p.name}" not in lists["valid"] | lists["test"])[0]
    valid_clip.unlink()
    make_empty(train_clip)
    make_8k(test_clip)
    bad = [(valid_clip, "listed in validation_list.txt line 1 but the audio file is missing"),
           (train_clip, "empty file"), (test_clip, "sample rate is 8000 Hz")]
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_speech_commands(sc, save, num_workers=1, progress=False)
    assert_listed(err, bad)
    assert len(err.value.problems) == 3 and no_csv(save)
    result = prepare_speech_commands(sc, save, skip_bad_files=True, progress=False)
    assert result.skipped_count == 3
    gone = {speech_commands._clip_id(p.relative_to(sc).as_posix())
            for p in (valid_clip, train_clip, test_clip)}
    for key, path in result.csv_files.items():
        assert not gone & {r["ID"] for r in read_csv(path)}
    total = sum(len(read_csv(save / f"kws35_{s}.csv")) for s in ("train", "valid", "test"))
    assert total == len(list(sc.glob("[!_]*/*.wav"))) - 2  # the missing one is not on disk
    # missing split list / background noise: fatal even when skipping
    (sc / "testing_list.txt").unlink()
    shutil.rmtree(sc / "_background_noise_")
    with pytest.raises(DataPreparationError) as err:
        prepare_speech_commands(sc, tmp_path / "x", num_classes=12, skip_bad_files=True,
                                progress=False)
    assert_listed(err, [(sc / "testing_list.txt", "split list does not exist"),
                        (sc / "_background_noise_", "background noise folder missing")])
    assert "cannot be skipped" in str(err.value) and no_csv(tmp_path / "x")


# ---------------------------------------------------------- Timers and Such
_ONES = {w.upper(): i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w.upper(): 10 * i for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}


def words_to_number(words):
    """Independent inverse of the spoken numbers (test oracle)."""
    words = [w for w in words.split() if w not in ("OH", "AND")]
    if "POINT" in words:
        k = words.index("POINT")
        digits = "".join(str(_ONES[w]) for w in words[k + 1:])
        return words_to_number(" ".join(words[:k])) + float("0." + digits)
    total = 0
    for word in words:
        if word in _ONES:
            total += _ONES[word]
        elif word in _TENS:
            total += _TENS[word]
        elif word == "HUNDRED":
            total *= 100
        elif word in ("A", "AN"):
            total += 1
        else:
            raise ValueError(word)
    return float(total)


def check_slot(slot, value, words):
    if isinstance(value, (int, float)):
        assert words_to_number(words) == pytest.approx(float(value)), (slot, value, words)
    elif slot == "am_or_pm":
        assert words.replace(" ", "").replace(".", "") == value
    elif slot.startswith("unit"):
        singular = {"FEET": "FOOT", "INCHES": "INCH"}.get(value.upper(), value.upper())
        assert words in (value.upper(), singular, singular.rstrip("S")), (value, words)
    else:
        assert words == value.strip().upper(), (slot, value, words)


@pytest.fixture(scope="module")
def tas_prepared(root, tmp_path_factory):
    save = tmp_path_factory.mktemp("tas")
    return save, prepare_timers_and_such(folder(root, "tas"), save, num_workers=1,
                                         progress=False)


def test_timers_and_such_manifests_and_slots(root, tas_prepared):
    tas, (save, result) = folder(root, "tas"), tas_prepared
    assert sorted(result.prepared) == ["dev", "test", "train"]
    sources = {"train": ["train-real", "train-synth"], "dev": ["dev-real"],
               "test": ["test-real"]}
    speakers, tagged = {}, 0
    for name, splits in sources.items():
        rows = check_manifest(save / f"{name}.csv", tas, timers_and_such.CSV_COLUMNS)
        meta = {(tas / r["path"]).as_posix(): r for s in splits
                for r in table(tas / f"{s}.csv")}
        assert {resolve(r["wav"], tas).as_posix() for r in rows} == set(meta)
        for row in rows:
            src = meta[resolve(row["wav"], tas).as_posix()]
            assert row["spk_id"] == src["speakerId"] and row["semantics"] == src["semantics"]
            assert row["transcript"] == " ".join(src["transcription"].upper().split())
            plain, slots = parse_slot_transcript(row["slot_transcript"])
            assert plain == row["transcript"]
            semantics = ast.literal_eval(src["semantics"])["slots"]
            expected = {k for k, v in semantics.items()
                        if not (k in ("hours", "minutes", "seconds", "alarm_minute")
                                and v == 0)}
            assert [s for s, _ in slots] and {s for s, _ in slots} == expected
            assert len(slots) == len(expected)  # each slot tagged once
            for slot, words in slots:
                check_slot(slot, semantics[slot], words)
                tagged += 1
        speakers[name] = {r["spk_id"] for r in rows}
    assert tagged > 500
    assert not speakers["train"] & speakers["dev"] and not speakers["dev"] & speakers["test"]
    assert not speakers["train"] & speakers["test"]
    # the option: real training data only
    only_real = prepare_timers_and_such(tas, save / "real", train_splits=["train-real"],
                                        progress=False)
    rows = read_csv(only_real.csv_files["train"])
    assert rows and len(rows) == len(table(tas / "train-real.csv"))
    assert all(r["ID"].startswith("train-real_") for r in rows)


def test_slot_tagging_rules():
    assert tag_transcript("wake me up at seven oh five a m",
                          "{'intent': 'SetAlarm', 'slots': {'am_or_pm': 'AM', "
                          "'alarm_hour': 7, 'alarm_minute': 5}}") == (
        "WAKE ME UP AT <alarm_hour> SEVEN </alarm_hour> <alarm_minute> OH FIVE "
        "</alarm_minute> <am_or_pm> A M </am_or_pm>")
    # THREE inside TWENTY THREE is not number2; number1 comes first
    assert tag_transcript("twenty three minus three", {"slots": {
        "number2": 3.0, "number1": 23.0, "operator": " minus "}}) == (
        "<number1> TWENTY THREE </number1> <operator> MINUS </operator> "
        "<number2> THREE </number2>")
    # durations are tagged before their unit word; unspoken zeros are not tagged
    assert tag_transcript("timer for five seconds and five minutes", {"slots": {
        "hours": 0, "minutes": 5, "seconds": 5}}) == (
        "TIMER FOR <seconds> FIVE </seconds> SECONDS AND <minutes> FIVE </minutes> MINUTES")
    assert tag_transcript("convert one foot to inches", {"slots": {
        "unit1": "feet", "unit2": "inches", "amount": 1.0}}) == (
        "CONVERT <amount> ONE </amount> <unit1> FOOT </unit1> TO <unit2> INCHES </unit2>")
    with pytest.raises(SlotTagError, match="cannot parse semantics"):
        tag_transcript("set a timer", "{'intent': 'SetTimer', 'slots': {")
    with pytest.raises(SlotTagError, match="cannot parse semantics"):
        tag_transcript("set a timer", "['SetTimer']")
    with pytest.raises(SlotTagError, match=r"slot number1=4\.5 not found"):
        tag_transcript("what is four plus five", {"slots": {"number1": 4.5}})
    with pytest.raises(ValueError, match="never closed"):
        parse_slot_transcript("A <x> B")


def test_timers_and_such_bad_inputs(root, tmp_path):
    tas = mirror(folder(root, "tas"), tmp_path / "tas")
    csv_path = tas / "train-real.csv"
    rows = table(csv_path)
    fields = list(rows[0])
    math = next(k for k, r in enumerate(rows) if "SimpleMath" in r["semantics"])
    others = [k for k in range(len(rows)) if k != math]
    unparsable, missing, empty = others[:3]
    rows[unparsable]["semantics"] = "{'intent': 'SetTimer', 'slots': {"
    rows[math]["transcription"] = "what is something plus nothing"
    write_rows(csv_path, fields, rows)
    (tas / rows[missing]["path"]).unlink()
    make_empty(tas / rows[empty]["path"])
    bad = [(tas / rows[unparsable]["path"], "cannot parse semantics"),
           (tas / rows[math]["path"], "not found in transcript"),
           (tas / rows[missing]["path"], f"listed in train-real.csv line {missing + 2} but "
                                         "the audio file is missing"),
           (tas / rows[empty]["path"], "empty file")]
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_timers_and_such(tas, save, progress=False)
    assert_listed(err, bad)
    assert len(err.value.problems) == 4 and no_csv(save)
    assert f"train-real.csv line {unparsable + 2}" in str(err.value)
    result = prepare_timers_and_such(tas, save, skip_bad_files=True, progress=False)
    train = read_csv(result.csv_files["train"])
    assert len(train) == len(rows) + len(table(tas / "train-synth.csv")) - 4
    kept = {resolve(r["wav"], tas) for r in train}
    assert not kept & {p for p, _ in bad}
    (tas / "dev-real.csv").unlink()
    with pytest.raises(DataPreparationError) as err:
        prepare_timers_and_such(tas, tmp_path / "x", skip_bad_files=True, progress=False)
    assert_listed(err, [(tas / "dev-real.csv", "split CSV does not exist")])
    assert no_csv(tmp_path / "x")


# ------------------------------------------------------------------- IEMOCAP
def iemocap_labels(data):
    """{turn: (session, raw category)} read straight from EmoEvaluation."""
    labels = {}
    for path in sorted(data.glob("Session*/dialog/EmoEvaluation/*.txt")):
        for line in path.read_text().splitlines():
            if line.startswith("["):
                _, turn, category, _ = line.split("\t")
                labels[turn] = (int(path.parts[-4][-1]), category)
    return labels


@pytest.fixture(scope="module")
def iemocap_prepared(root, tmp_path_factory):
    save = tmp_path_factory.mktemp("iemocap")
    return save, prepare_iemocap(folder(root, "iemocap"), save, num_workers=1, progress=False)


def test_iemocap_folds(root, iemocap_prepared):
    data, (save, result) = folder(root, "iemocap"), iemocap_prepared
    assert len(result.prepared) == 15
    labels = iemocap_labels(data)
    merged = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}
    kept = {t: (s, merged[c]) for t, (s, c) in labels.items() if c in merged}
    assert any(c == "exc" for _, c in labels.values())
    assert any(c not in merged for _, c in labels.values())  # discarded ones exist
    for k in range(1, 6):
        splits = {s: check_manifest(save / f"fold{k}_{s}.csv", data, iemocap.CSV_COLUMNS)
                  for s in ("train", "valid", "test")}
        ids = {s: {r["ID"] for r in rows} for s, rows in splits.items()}
        assert ids["test"] == {t for t, (s, _) in kept.items() if s == k}
        assert ids["train"] | ids["valid"] == {t for t, (s, _) in kept.items() if s != k}
        assert not ids["train"] & ids["valid"]
        assert 0.15 < len(ids["valid"]) / (len(ids["train"]) + len(ids["valid"])) < 0.25
        for split, rows in splits.items():
            for row in rows:
                session, emotion = kept[row["ID"]]
                assert row["emotion"] == emotion
                assert row["spk_id"] == f"Ses0{session}{row['ID'].rsplit('_', 1)[1][0]}"
                assert resolve(row["wav"], data).name == row["ID"] + ".wav"
            assert {r["emotion"] for r in rows} <= {"neu", "hap", "ang", "sad"}
        test_speakers = {r["spk_id"] for r in splits["test"]}
        assert test_speakers == {f"Ses0{k}F", f"Ses0{k}M"}
        assert not test_speakers & {r["spk_id"] for r in splits["train"] + splits["valid"]}
    # exc merged into hap: hap rows of fold 1 test = hap + exc turns of Session 1
    test1 = Counter(r["emotion"] for r in read_csv(save / "fold1_test.csv"))
    raw1 = Counter(c for s, c in labels.values() if s == 1)
    assert test1["hap"] == raw1["hap"] + raw1["exc"] and test1["neu"] == raw1["neu"]


def test_iemocap_session_valid(root, tmp_path):
    data = folder(root, "iemocap")
    result = prepare_iemocap(data, tmp_path, folds=[2], valid="session", progress=False)
    assert sorted(result.csv_files) == ["fold2_test", "fold2_train", "fold2_valid"]
    sessions = {s: {r["spk_id"][:5] for r in read_csv(tmp_path / f"fold2_{s}.csv")}
                for s in ("train", "valid", "test")}
    assert sessions == {"train": {"Ses01", "Ses04", "Ses05"}, "valid": {"Ses03"},
                        "test": {"Ses02"}}


def test_iemocap_bad_inputs(root, tmp_path):
    data = mirror(folder(root, "iemocap"), tmp_path / "IEMOCAP")
    labels = iemocap_labels(data)
    four = sorted(t for t, (_, c) in labels.items() if c in ("neu", "hap", "exc", "ang", "sad"))
    evaluation = sorted((data / "Session1" / "dialog" / "EmoEvaluation").glob("*.txt"))[0]
    evaluation.unlink()
    dialog_turns = {t for t in labels if t.startswith(evaluation.stem + "_")}

    def wav(turn):
        session, dialog = labels[turn][0], turn.rsplit("_", 1)[0]
        return data / f"Session{session}" / "sentences" / "wav" / dialog / f"{turn}.wav"

    missing = next(t for t in four if t.startswith("Ses02"))
    empty = next(t for t in four if t.startswith("Ses03"))
    wav(missing).unlink()
    make_empty(wav(empty))
    bad = [(evaluation, "EmoEvaluation file missing"),
           (wav(missing), "but the audio file is missing"), (wav(empty), "empty file")]
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_iemocap(data, save, progress=False)
    assert_listed(err, bad)
    assert len(err.value.problems) == 3 and no_csv(save)
    result = prepare_iemocap(data, save, skip_bad_files=True, progress=False)
    assert result.skipped_count == 3
    ids = set()
    for k in range(1, 6):
        fold = [r["ID"] for s in ("train", "valid", "test")
                for r in read_csv(save / f"fold{k}_{s}.csv")]
        assert len(fold) == len(set(fold))
        ids = set(fold) if not ids else ids
        assert set(fold) == ids  # every fold covers the same utterances
    assert ids == set(four) - dialog_turns - {missing, empty}
    shutil.rmtree(data / "Session5")
    with pytest.raises(DataPreparationError) as err:
        prepare_iemocap(data, tmp_path / "x", skip_bad_files=True, progress=False)
    assert_listed(err, [(data / "Session5", "session folder does not exist")])


# ------------------------------------------------------------------ VoxCeleb1
@pytest.fixture(scope="module")
def vox_prepared(root, tmp_path_factory):
    save = tmp_path_factory.mktemp("vox")
    return save, prepare_voxceleb(folder(root, "vox"), save, num_workers=1, progress=False)


def test_voxceleb_identification(root, vox_prepared):
    vox, (save, result) = folder(root, "vox"), vox_prepared
    lines = [line.split() for line in (vox / "iden_split.txt").read_text().splitlines()]
    speakers = {}
    for label, split in (("1", "train"), ("2", "dev"), ("3", "test")):
        rows = check_manifest(save / f"iden_{split}.csv", vox, voxceleb.CSV_COLUMNS)
        expected = {f"wav/{p}" for lab, p in lines if lab == label}
        assert {resolve(r["wav"], vox).relative_to(vox).as_posix() for r in rows} == expected
        for row in rows:
            assert row["spk_id"] == resolve(row["wav"], vox).parts[-3]
            assert row["ID"] == "--".join(resolve(row["wav"], vox).parts[-3:])[:-4]
        speakers[split] = {r["spk_id"] for r in rows}
    # closed-set identification: every speaker in all three splits
    assert speakers["train"] == speakers["dev"] == speakers["test"]
    assert len(speakers["train"]) == len(list((vox / "wav").iterdir()))


def test_voxceleb_verification(root, vox_prepared):
    vox, (save, _) = folder(root, "vox"), vox_prepared
    trials = [line.split() for line in (vox / "veri_test2.txt").read_text().splitlines()]
    trial_speakers = {p.split("/")[0] for _, a, b in trials for p in (a, b)}
    train = check_manifest(save / "veri_train.csv", vox, voxceleb.CSV_COLUMNS)
    test = check_manifest(save / "veri_test.csv", vox, voxceleb.CSV_COLUMNS)
    assert not {r["spk_id"] for r in train} & trial_speakers
    on_disk = {p.relative_to(vox / "wav").as_posix() for p in (vox / "wav").rglob("*.wav")
               if p.parts[-3] not in trial_speakers}
    assert {resolve(r["wav"], vox).relative_to(vox / "wav").as_posix()
            for r in train} == on_disk
    test_by_id = {r["ID"]: r for r in test}
    assert {resolve(r["wav"], vox).relative_to(vox / "wav").as_posix() for r in test} == \
        {p for _, a, b in trials for p in (a, b)}
    assert header(save / "veri_trials.csv") == voxceleb.TRIAL_COLUMNS
    rows = read_csv(save / "veri_trials.csv")
    assert len(rows) == len(trials)
    for row, (label, enrol, tst) in zip(rows, trials):
        assert row["label"] == label
        assert resolve(row["enrol_wav"], vox) == vox / "wav" / enrol
        assert resolve(row["test_wav"], vox) == vox / "wav" / tst
        assert test_by_id[row["enrol"]]["wav"] == row["enrol_wav"]
        same = test_by_id[row["enrol"]]["spk_id"] == test_by_id[row["test"]]["spk_id"]
        assert int(row["label"]) == int(same)
    assert {r["label"] for r in rows} == {"0", "1"}


def test_voxceleb_bad_inputs(root, tmp_path):
    vox = mirror(folder(root, "vox"), tmp_path / "VoxCeleb1")
    trials = (vox / "veri_test2.txt").read_text().splitlines()
    label, enrol, _ = trials[0].split()
    trials[0] = trials[0].replace(label, str(1 - int(label)), 1)
    (vox / "veri_test2.txt").write_text("\n".join(trials) + "\n")
    gone = trials[5].split()[2]
    (vox / "wav" / gone).unlink()
    iden = [line.split() for line in (vox / "iden_split.txt").read_text().splitlines()]
    trial_speakers = {p.split("/")[0] for t in trials for p in t.split()[1:]}
    emptied = next(p for _, p in iden if p.split("/")[0] not in trial_speakers)
    make_empty(vox / "wav" / emptied)
    uses = [k + 1 for k, t in enumerate(trials) if gone in t.split()[1:]]
    bad = [(vox / "veri_test2.txt", "line 1: label"),
           (vox / "wav" / emptied, "empty file")]
    bad += [(vox / "wav" / gone, f"used in veri_test2.txt line {n} but the audio file is "
                                 "missing") for n in uses]
    bad += [(vox / "wav" / gone, "listed in iden_split.txt")]
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_voxceleb(vox, save, progress=False)
    assert_listed(err, bad)
    assert len(err.value.problems) == len(bad) and no_csv(save)
    result = prepare_voxceleb(vox, save, skip_bad_files=True, progress=False)
    rows = read_csv(result.csv_files["veri_trials"])
    bad_lines = {1, *uses}
    assert len(rows) == len(trials) - len(bad_lines)
    assert [(r["label"], r["enrol_wav"][len("$data_root/wav/"):],
             r["test_wav"][len("$data_root/wav/"):]) for r in rows] == \
        [tuple(t.split()) for k, t in enumerate(trials, 1) if k not in bad_lines]
    iden_ids = {r["ID"] for s in ("train", "dev", "test")
                for r in read_csv(save / f"iden_{s}.csv")}
    assert len(iden_ids) == len(iden) - 2
    assert voxceleb.utterance_id(emptied) not in {r["ID"] for r in read_csv(
        save / "veri_train.csv")}
    # verification needs no iden_split.txt; identification does
    (vox / "iden_split.txt").unlink()
    prepare_voxceleb(vox, tmp_path / "veri", tasks=["verification"], skip_bad_files=True,
                     progress=False)
    with pytest.raises(DataPreparationError) as err:
        prepare_voxceleb(vox, tmp_path / "x", skip_bad_files=True, progress=False)
    assert_listed(err, [(vox / "iden_split.txt", "split file does not exist")])


# ------------------------------------------------------- Fluent Speech Commands
def test_fluent_speech(root, tmp_path):
    fsc = folder(root, "fsc")
    result = prepare_fluent_speech(fsc, tmp_path, num_workers=1, progress=False)
    speakers = {}
    for split in ("train", "valid", "test"):
        rows = check_manifest(result.csv_files[split], fsc, fluent_speech.CSV_COLUMNS)
        meta = {(fsc / r["path"]).as_posix(): r for r in table(fsc / "data" /
                                                               f"{split}_data.csv")}
        assert {resolve(r["wav"], fsc).as_posix() for r in rows} == set(meta)
        for row in rows:
            src = meta[resolve(row["wav"], fsc).as_posix()]
            assert row["ID"] == Path(src["path"]).stem
            assert row["spk_id"] == src["speakerId"]
            assert row["transcript"] == src["transcription"]
            assert (row["action"], row["object"], row["location"]) == \
                (src["action"], src["object"], src["location"])
            assert row["intent"] == f"{src['action']}_{src['object']}_{src['location']}"
        speakers[split] = {r["spk_id"] for r in rows}
        if split == "train":
            assert len({r["intent"] for r in rows}) == 31
    assert not speakers["train"] & speakers["valid"] and not speakers["train"] & speakers["test"]


def test_fluent_speech_bad_inputs(root, tmp_path):
    fsc = mirror(folder(root, "fsc"), tmp_path / "fsc")
    valid = table(fsc / "data" / "valid_data.csv")
    train = table(fsc / "data" / "train_data.csv")
    (fsc / valid[0]["path"]).unlink()
    make_empty(fsc / train[3]["path"])
    train[5]["action"] = ""
    write_rows(fsc / "data" / "train_data.csv", list(train[0]), train)
    bad = [(fsc / valid[0]["path"], "listed in valid_data.csv line 2 but the audio file is "
                                    "missing"),
           (fsc / train[3]["path"], "empty file"),
           (fsc / train[5]["path"], "empty action/object/location in train_data.csv line 7")]
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_fluent_speech(fsc, save, progress=False)
    assert_listed(err, bad)
    assert len(err.value.problems) == 3 and no_csv(save)
    result = prepare_fluent_speech(fsc, save, skip_bad_files=True, progress=False)
    assert len(read_csv(result.csv_files["train"])) == len(train) - 2
    assert len(read_csv(result.csv_files["valid"])) == len(valid) - 1
    (fsc / "data" / "test_data.csv").unlink()
    with pytest.raises(DataPreparationError) as err:
        prepare_fluent_speech(fsc, tmp_path / "x", skip_bad_files=True, progress=False)
    assert_listed(err, [(fsc / "data" / "test_data.csv", "split CSV does not exist")])


# ---------------------------------------------------------------- Common Voice
def test_common_voice(root, tmp_path):
    cv = folder(root, "cv")
    result = prepare_common_voice(cv, tmp_path, num_workers=1, sample_rate=16000,
                                  progress=False)
    speakers = {}
    for split in ("train", "dev", "test"):
        rows = check_manifest(result.csv_files[split], cv, common_voice.CSV_COLUMNS)
        meta = {r["path"]: r for r in table(cv / f"{split}.tsv", delimiter="\t")}
        assert {resolve(r["wav"], cv).name for r in rows} == set(meta)
        for row in rows[:10]:  # decoding agrees with the header's length
            audio, rate = sf.read(str(resolve(row["wav"], cv)))
            assert rate == 16000 and len(audio) / rate == pytest.approx(
                float(row["duration"]), abs=0.03)
        for row in rows:
            src = meta[resolve(row["wav"], cv).name]
            assert row["wrd"] == src["sentence"] and row["spk_id"] == src["client_id"]
            assert row["ID"] == Path(src["path"]).stem
        speakers[split] = {r["spk_id"] for r in rows}
    assert not speakers["train"] & speakers["dev"] and not speakers["dev"] & speakers["test"]
    # default: the real corpus's 48 kHz; the 16 kHz synthetic clips are all listed
    with pytest.raises(DataPreparationError) as err:
        prepare_common_voice(cv, tmp_path / "48k", splits=["dev"], progress=False)
    assert len(err.value.problems) == len(table(cv / "dev.tsv", delimiter="\t"))
    assert "sample rate is 16000 Hz, expected 48000 Hz" in str(err.value)


def test_common_voice_bad_inputs(root, tmp_path):
    cv = mirror(folder(root, "cv"), tmp_path / "cv")
    train = table(cv / "train.tsv", delimiter="\t")
    (cv / "clips" / train[0]["path"]).unlink()
    make_empty(cv / "clips" / train[1]["path"])
    make_8k(cv / "clips" / train[2]["path"], fmt="MP3")
    bad = [(cv / "clips" / train[0]["path"], "listed in train.tsv line 2 but the audio file "
                                             "is missing"),
           (cv / "clips" / train[1]["path"], "empty file"),
           (cv / "clips" / train[2]["path"], "sample rate is 8000 Hz, expected 16000 Hz")]
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_common_voice(cv, save, sample_rate=16000, progress=False)
    assert_listed(err, bad)
    assert len(err.value.problems) == 3 and no_csv(save)
    result = prepare_common_voice(cv, save, sample_rate=16000, skip_bad_files=True,
                                  progress=False)
    assert len(read_csv(result.csv_files["train"])) == len(train) - 3
    (cv / "test.tsv").unlink()
    with pytest.raises(DataPreparationError) as err:
        prepare_common_voice(cv, tmp_path / "x", sample_rate=16000, skip_bad_files=True,
                             progress=False)
    assert_listed(err, [(cv / "test.tsv", "split TSV does not exist")])


# -------------------------------------------------------- LibriSpeech phonemes
ARPABET_39 = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P "
                 "R S SH T TH UH UW V W Y Z ZH".split())


def read_lexicon(path):
    lexicon = {}
    for line in Path(path).read_text().splitlines():
        word, *phones = line.split()
        lexicon.setdefault(word, [re.sub(r"\d", "", p) for p in phones])
    return lexicon


def test_librispeech_phonemes(root, tmp_path):
    ls = folder(root, "ls")
    splits = ["dev-clean", "test-clean"]
    result = prepare_librispeech_phonemes(ls, tmp_path, splits, num_workers=1,
                                          progress=False)
    lexicon = read_lexicon(ls / "librispeech-lexicon.txt")
    for split in splits:
        rows = check_manifest(result.csv_files[split], ls, librispeech_phonemes.CSV_COLUMNS)
        words_rows = read_csv(tmp_path / f"{split}.csv")  # the LibriSpeech manifest
        assert [r["ID"] for r in rows] == [r["ID"] for r in words_rows] and rows
        for row, plain in zip(rows, words_rows):
            assert row["wrd"] == plain["wrd"]
            expected = [p for w in row["wrd"].split() for p in lexicon[w]]
            assert row["phn"].split() == expected
            assert set(expected) <= ARPABET_39
    again = prepare_librispeech_phonemes(ls, tmp_path, splits, progress=False)
    assert again.prepared == [] and again.reused == splits


def test_librispeech_phonemes_missing_words(root, tmp_path):
    ls = folder(root, "ls")
    manifest = [r for split in ("dev-clean",) for r in read_csv(
        prepare_librispeech_phonemes(ls, tmp_path / "ok", ["dev-clean"],
                                     progress=False).csv_files[split])]
    counts = Counter(w for r in manifest for w in set(r["wrd"].split()))
    dropped = sorted(w for w, n in counts.items() if n == 1)[:2]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(line + "\n" for line in
                               (ls / "librispeech-lexicon.txt").read_text().splitlines()
                               if line.split()[0] not in dropped))
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech_phonemes(ls, save, ["dev-clean"], lexicon_file=lexicon,
                                     progress=False)
    assert_listed(err, [(lexicon, f"no pronunciation for word {w!r} (used in 1 utterance")
                        for w in dropped])
    assert len(err.value.problems) == 2 and no_csv(save)  # not even the manifests
    result = prepare_librispeech_phonemes(ls, save, ["dev-clean"], lexicon_file=lexicon,
                                          skip_bad_files=True, progress=False)
    rows = read_csv(result.csv_files["dev-clean"])
    assert {r["ID"] for r in rows} == {r["ID"] for r in manifest
                                       if not set(dropped) & set(r["wrd"].split())}
    assert len(rows) == len(manifest) - 2
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech_phonemes(ls, tmp_path / "x", ["dev-clean"],
                                     lexicon_file=tmp_path / "none.txt",
                                     skip_bad_files=True, progress=False)
    assert_listed(err, [(tmp_path / "none.txt", "lexicon file does not exist")])


# ---------------------------------------------------------------------- CLIs
@pytest.mark.parametrize("module,key,extra", [
    (speech_commands, "sc", ["--num_classes", "35"]),
    (timers_and_such, "tas", []),
    (iemocap, "iemocap", ["--folds", "1"]),
    (voxceleb, "vox", []),
    (fluent_speech, "fsc", []),
    (common_voice, "cv", ["--sample_rate", "16000"]),
    (librispeech_phonemes, "ls", ["--splits", "dev-clean"]),
])
def test_cli(root, tmp_path, capsys, module, key, extra):
    assert module.main(["--data_folder", str(folder(root, key)), "--save_folder",
                        str(tmp_path), "--num_workers", "1"] + extra) == 0
    assert list(tmp_path.glob("*.csv"))
    assert module.main(["--data_folder", str(tmp_path / "nowhere"), "--save_folder",
                        str(tmp_path / "out")] + extra) == 2
    assert "data folder does not exist" in capsys.readouterr().err
