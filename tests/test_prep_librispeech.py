"""LibriSpeech / Libri-light preparation: manifests checked against the files
on disk, skip-if-done, and the bad-input policy on broken copies."""
import csv
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.audio_scan import scan_audio
from data_prep.done_record import DoneRecord
from data_prep.librilight import main as librilight_main, prepare_librilight
from data_prep.librispeech import (CSV_COLUMNS, expand_splits, main as librispeech_main,
                                   prepare_librispeech)
from data_prep.problems import ProblemList
from speechbrain_ext.io.data import DataPreparationError, read_csv

SPLITS = ("train-clean-100", "dev-clean", "test-clean")


@pytest.fixture(scope="module")
def corpus(mini_root):
    """The mini LibriSpeech + Libri-light (generated once, reused)."""
    from data_prep.synthetic import generate

    generate(mini_root, seed=0, size="mini", corpora=["librispeech", "librilight"],
             log=lambda *a: None)
    return mini_root


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    save = tmp_path_factory.mktemp("prep")
    result = prepare_librispeech(corpus / "LibriSpeech", save, SPLITS, num_workers=2,
                                 progress=False)
    return save, result


def transcripts(folder):
    texts = {}
    for trans in Path(folder).rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            texts[uid] = text
    return texts


def check_manifest(csv_path, data_folder, flacs):
    """Every flac in ``flacs`` listed once, with its true duration, speaker
    and transcript; nothing else listed."""
    rows = read_csv(csv_path)
    with open(csv_path) as handle:
        assert handle.readline().strip() == ",".join(CSV_COLUMNS)
    ids = [r["ID"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate IDs"
    assert set(ids) == {f.stem for f in flacs}
    texts = {}
    for folder in {f.parent for f in flacs}:
        texts.update(transcripts(folder))
    by_id = {f.stem: f for f in flacs}
    for row in rows:
        flac = by_id[row["ID"]]
        assert row["wav"].startswith("$data_root/")
        assert Path(row["wav"].replace("$data_root", str(data_folder))) == flac
        info = sf.info(str(flac))
        assert abs(float(row["duration"]) - info.frames / info.samplerate) < 1e-7
        assert row["spk_id"] == flac.parent.parent.name == row["ID"].split("-")[0]
        assert row["wrd"] == texts[row["ID"]] and row["wrd"] == row["wrd"].upper()
    return rows


def test_librispeech_manifests_match_disk(corpus, prepared):
    save, result = prepared
    ls = corpus / "LibriSpeech"
    assert result.prepared == list(SPLITS) and result.skipped_count == 0
    for split in SPLITS:
        assert result.csv_files[split] == str(save / f"{split}.csv")
        rows = check_manifest(save / f"{split}.csv", ls, sorted((ls / split).rglob("*.flac")))
        assert rows and [r["ID"] for r in rows] == sorted(r["ID"] for r in rows)


def test_manifest_loads_in_speechbrain(corpus, prepared):
    from speechbrain.dataio.dataio import read_audio
    from speechbrain.dataio.dataset import DynamicItemDataset

    save, _ = prepared
    data = DynamicItemDataset.from_csv(save / "dev-clean.csv",
                                       replacements={"data_root": str(corpus / "LibriSpeech")})
    data.add_dynamic_item(read_audio, takes="wav", provides="sig")
    data.set_output_keys(["id", "sig", "duration", "wrd"])
    item = data[0]
    assert item["sig"].ndim == 1
    assert item["sig"].shape[0] == round(item["duration"] * 16000)
    assert item["wrd"]


def test_librilight_subsets(corpus, tmp_path):
    ll = corpus / "librispeech_finetuning"
    result = prepare_librilight(ll, tmp_path, num_workers=2, progress=False)
    assert sorted(result.prepared) == ["10h", "10min", "1h"]
    expected = {"10min": sorted((ll / "1h" / "0").rglob("*.flac")),
                "1h": sorted((ll / "1h").rglob("*.flac")),
                "10h": sorted(ll.rglob("*.flac"))}
    ids = {}
    for subset, flacs in expected.items():
        rows = check_manifest(tmp_path / f"librilight-{subset}.csv", ll, flacs)
        ids[subset] = {r["ID"] for r in rows}
    assert ids["10min"] < ids["1h"] < ids["10h"]
    assert any("/9h/" in f.as_posix() for f in expected["10h"])
    # a second call reuses all three
    again = prepare_librilight(ll, tmp_path, progress=False)
    assert again.prepared == [] and sorted(again.reused) == ["10h", "10min", "1h"]


def test_parallel_scan_equals_serial(corpus):
    flacs = sorted((corpus / "LibriSpeech" / "train-clean-100").rglob("*.flac"))
    serial = scan_audio(flacs, num_workers=1, progress=False)
    parallel = scan_audio(flacs, num_workers=2, progress=False)
    assert serial.frames == parallel.frames and len(serial.frames) == len(flacs)
    assert not serial.problems and not parallel.problems


def test_skip_if_done_and_reprepare(corpus, tmp_path):
    ls = corpus / "LibriSpeech"
    save = tmp_path / "save"
    assert prepare_librispeech(ls, save, ["dev-clean"], skip_prep=True) is None
    assert not save.exists()
    first = prepare_librispeech(ls, save, ["dev-clean"], progress=False)
    csv_path = save / "dev-clean.csv"
    stamp = csv_path.stat().st_mtime_ns
    assert first.prepared == ["dev-clean"]
    assert (save / "librispeech_prep_options.json").is_file()
    same = prepare_librispeech(ls, save, ["dev-clean"], progress=False)
    assert same.prepared == [] and same.reused == ["dev-clean"]
    assert csv_path.stat().st_mtime_ns == stamp
    # adding a split prepares only that one
    more = prepare_librispeech(ls, save, ["dev-clean", "test-clean"], progress=False)
    assert more.prepared == ["test-clean"] and more.reused == ["dev-clean"]
    # changed option -> re-prepared
    changed = prepare_librispeech(ls, save, ["dev-clean"], skip_bad_files=True,
                                  progress=False)
    assert changed.prepared == ["dev-clean"]
    # another data folder (a copy) -> re-prepared, same relative paths
    copy = tmp_path / "LibriSpeechCopy"
    shutil.copytree(ls / "dev-clean", copy / "dev-clean")
    before = csv_path.read_text()
    moved = prepare_librispeech(copy, save, ["dev-clean"], skip_bad_files=True,
                                progress=False)
    assert moved.prepared == ["dev-clean"] and csv_path.read_text() == before
    record = DoneRecord(save, "librispeech")
    assert record._entries["dev-clean"]["data_folder"] == str(copy)
    # a deleted CSV is re-made even with unchanged options
    csv_path.unlink()
    redo = prepare_librispeech(copy, save, ["dev-clean"], skip_bad_files=True,
                               progress=False)
    assert redo.prepared == ["dev-clean"] and csv_path.read_text() == before


def test_960_shorthand_and_merge(corpus, tmp_path):
    assert expand_splits(["960"]) == ["train-clean-100", "train-clean-360",
                                      "train-other-500"]
    # the mini corpus has no train-clean-360: a clear, fatal error, nothing written
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(corpus / "LibriSpeech", tmp_path, ["960"], progress=False)
    assert "train-clean-360: split folder does not exist" in str(err.value)
    assert "train-other-500: split folder does not exist" in str(err.value)
    assert not list(tmp_path.glob("*.csv"))
    result = prepare_librispeech(corpus / "LibriSpeech", tmp_path, ["dev-clean", "test-clean"],
                                 merge_name="eval", progress=False)
    merged = read_csv(result.csv_files["eval"])
    assert len(merged) == (len(read_csv(tmp_path / "dev-clean.csv"))
                           + len(read_csv(tmp_path / "test-clean.csv")))


def test_cli(corpus, tmp_path, capsys):
    assert librispeech_main(["--data_folder", str(corpus / "LibriSpeech"),
                             "--save_folder", str(tmp_path), "--splits", "test-clean",
                             "--num_workers", "1"]) == 0
    assert (tmp_path / "test-clean.csv").is_file()
    assert librilight_main(["--data_folder", str(corpus / "librispeech_finetuning"),
                            "--save_folder", str(tmp_path), "--subsets", "10min"]) == 0
    assert (tmp_path / "librilight-10min.csv").is_file()
    # the parent folder instead of LibriSpeech/: exit code 2 and a hint
    assert librispeech_main(["--data_folder", str(corpus), "--save_folder",
                             str(tmp_path / "x"), "--splits", "dev-clean"]) == 2
    err = capsys.readouterr().err
    assert "split folder does not exist" in err and "did you mean" in err


# ------------------------------------------------------------ bad inputs
@pytest.fixture
def broken(corpus, tmp_path):
    """A small LibriSpeech copy with one bad thing of each kind.

    Returns ``(data_folder, {path: expected words in the message})``."""
    src = corpus / "LibriSpeech" / "train-clean-100"
    chapters = sorted(p for p in src.glob("*/*") if p.is_dir())[:2]
    root = tmp_path / "LibriSpeech"
    for chapter in chapters:
        shutil.copytree(chapter, root / "train-clean-100" / chapter.relative_to(src))
    (a_spk, a_ch), (b_spk, b_ch) = [(c.parent.name, c.name) for c in chapters]
    a = root / "train-clean-100" / a_spk / a_ch
    b = root / "train-clean-100" / b_spk / b_ch
    bad = {}
    empty = a / f"{a_spk}-{a_ch}-0000.flac"
    empty.write_bytes(b"")
    bad[empty] = "empty file"
    low_rate = a / f"{a_spk}-{a_ch}-0001.flac"
    sf.write(low_rate, np.zeros(8000, dtype=np.float32), 8000)
    bad[low_rate] = "sample rate is 8000 Hz, expected 16000 Hz"
    corrupt = a / f"{a_spk}-{a_ch}-0002.flac"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    bad[corrupt] = "unreadable audio"
    stereo = a / f"{a_spk}-{a_ch}-0003.flac"
    sf.write(stereo, np.zeros((16000, 2), dtype=np.float32), 16000)
    bad[stereo] = "2 channels, expected mono"
    missing = b / f"{b_spk}-{b_ch}-0000.flac"
    missing.unlink()
    bad[missing] = "but the audio file is missing"
    orphan = b / f"{b_spk}-{b_ch}-9999.flac"
    shutil.copy(b / f"{b_spk}-{b_ch}-0001.flac", orphan)
    bad[orphan] = "audio file has no line in"
    return root, bad


def test_bad_inputs_raise_listing_everything(broken, tmp_path):
    root, bad = broken
    save = tmp_path / "save"
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(root, save, ["train-clean-100", "dev-clean"], num_workers=2,
                            progress=False)
    message = str(err.value)
    lines = message.splitlines()
    for path, what in bad.items():
        assert any(str(path) in line and what in line for line in lines), (path, message)
    assert any(str(root / "dev-clean") in line and "split folder does not exist" in line
               for line in lines)
    assert len(err.value.problems) == len(bad) + 1
    assert not save.exists() or not list(save.glob("*.csv"))
    # without the missing split the bad files still stop it, nothing written
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(root, save, ["train-clean-100"], progress=False)
    assert len(err.value.problems) == len(bad)
    assert "skip_bad_files=True" in str(err.value)
    assert not save.exists() or not list(save.glob("*.csv"))


def test_missing_split_is_fatal_even_when_skipping(broken, tmp_path):
    root, _ = broken
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(root, tmp_path, ["train-clean-100", "dev-clean"],
                            skip_bad_files=True, progress=False)
    assert "cannot be skipped" in str(err.value)
    assert not list(tmp_path.glob("*.csv"))
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(tmp_path / "nowhere", tmp_path, ["dev-clean"],
                            skip_bad_files=True, progress=False)
    assert "data folder does not exist" in str(err.value)


def test_skip_bad_files_writes_the_rest(broken, tmp_path, caplog):
    root, bad = broken
    with caplog.at_level(logging.WARNING, logger="data_prep.problems"):
        result = prepare_librispeech(root, tmp_path, ["train-clean-100"],
                                     skip_bad_files=True, num_workers=2, progress=False)
    assert result.skipped_count == len(bad)
    assert {Path(p.path) for p in result.skipped} == set(bad)
    assert f"skipped {len(bad)} bad input(s)" in caplog.text
    good = sorted(f for f in (root / "train-clean-100").rglob("*.flac") if f not in bad)
    rows = check_manifest(tmp_path / "train-clean-100.csv", root, good)
    copied = len(list((root / "train-clean-100").rglob("*.flac")))
    # every flac now on disk except the 4 broken ones and the orphan (no transcript line)
    assert len(rows) == copied - 5 == len(good)


def test_long_problem_lists_go_to_a_file_too(tmp_path):
    problems = ProblemList("toy preparation")
    for k in range(30):
        problems.add(f"/data/{k}.flac", "empty file (0 bytes)")
    with pytest.raises(DataPreparationError) as err:
        problems.enforce(report_folder=tmp_path)
    report = tmp_path / "toy_preparation_problems.txt"
    assert str(report) in str(err.value)
    for k in range(30):
        assert f"/data/{k}.flac: empty file" in str(err.value)
        assert f"/data/{k}.flac: empty file" in report.read_text()


def test_transcript_problems(tmp_path):
    """Malformed transcript files are reported with their line numbers."""
    chapter = tmp_path / "LS" / "dev-clean" / "7" / "8"
    chapter.mkdir(parents=True)
    for utt in ("7-8-0000", "7-8-0001"):
        sf.write(chapter / f"{utt}.flac", np.zeros(1600, dtype=np.float32), 16000)
    (chapter / "7-8.trans.txt").write_text(
        "7-8-0000 HELLO\n7-8-0000 AGAIN\n9-9-0001 WRONG CHAPTER\n7-8-0001\n")
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(tmp_path / "LS", tmp_path / "out", ["dev-clean"], progress=False)
    text = str(err.value)
    assert "line 2: utterance 7-8-0000 listed twice" in text
    assert "line 3: utterance id '9-9-0001' does not start with '7-8-'" in text
    assert "line 4: utterance 7-8-0001 has an empty transcript" in text
    assert str(chapter / "7-8-0001.flac") in text  # then it has no transcript line
    # a chapter folder without its .trans.txt: every audio file is listed
    (chapter / "7-8.trans.txt").unlink()
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(tmp_path / "LS", tmp_path / "out", ["dev-clean"], progress=False)
    for utt in ("7-8-0000", "7-8-0001"):
        assert (f"{chapter / utt}.flac: no transcript: 7-8.trans.txt is missing"
                in str(err.value))
    assert not (tmp_path / "out").exists()
