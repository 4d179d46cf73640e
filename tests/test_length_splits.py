"""Paper 003's length splits on the mini LibriSpeech: the rules (spread,
total duration, chapters), the audio of every piece, statistics, figure,
non-default lengths and skip-if-done."""
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.length_splits import csv_name, main, prepare_length_splits
from data_prep.length_splits.cutting import cut_chapter, make_pieces
from data_prep.length_splits.reading import piece_dataset
from speechbrain_ext.io.data import parse_segments, read_csv, read_piece

SR = 16000
LENGTHS = (1, 3, 5, 10, 15)


@pytest.fixture(scope="module")
def ls(mini_root):
    from data_prep.synthetic import generate

    generate(mini_root, seed=0, size="mini", corpora=["librispeech"], log=lambda *a: None)
    return mini_root / "LibriSpeech"


@pytest.fixture(scope="module")
def splits(ls, tmp_path_factory):
    save = tmp_path_factory.mktemp("lengths")
    result = prepare_length_splits(ls, save, LENGTHS, num_workers=2)
    source = read_csv(save / "train-clean-100.csv")
    pieces = {L: read_csv(save / csv_name(L)) for L in LENGTHS}
    return save, result, source, pieces


def chapter_frames(source):
    """{(spk, chapter): [(utt number, wav, frames)]} of the source manifest."""
    chapters = defaultdict(list)
    for row in source:
        spk, ch, utt = row["ID"].split("-")
        chapters[(spk, ch)].append((int(utt), row["wav"], round(float(row["duration"]) * SR)))
    return {k: sorted(v) for k, v in chapters.items()}


def best_possible_kept(source, length, spread=1.0):
    """Most speech any split with pieces in [L, L + spread] that stay inside
    a chapter can keep: per chapter min(N, floor(N / lo) * hi) samples."""
    lo, hi = round(length * SR), round((length + spread) * SR)
    return sum(min(n, (n // lo) * hi)
               for n in (sum(u[2] for u in utts) for utts in chapter_frames(source).values()))


def test_spread_and_piece_lengths(splits):
    _, _, _, pieces = splits
    for L in LENGTHS:
        secs = np.array([float(p["duration"]) for p in pieces[L]])
        assert len(secs) > 0
        assert secs.min() >= L - 1e-9 and secs.max() <= L + 1 + 1e-9, L
        assert secs.max() - secs.min() <= 1.0 + 1e-9, L


def test_total_duration_kept(splits):
    _, _, source, pieces = splits
    source_frames = sum(round(float(r["duration"]) * SR) for r in source)
    for L in LENGTHS:
        kept = sum(round(float(p["duration"]) * SR) for p in pieces[L])
        # nothing but the unavoidable remainders is dropped ...
        assert kept == best_possible_kept(source, L), L
        # ... which is < 1 % here up to 10 s; the mini corpus's chapters last
        # only ~2 minutes (10 utterances), so 15 s pieces lose ~1.2 %
        # (it is 0 for chapters over 4 minutes, as LibriSpeech's)
        assert kept <= source_frames
        assert kept >= 0.99 * source_frames, (L, kept / source_frames)  # the rule of paper 003


def test_segments_follow_the_chapter_stream(splits):
    """Pieces never cross speaker/chapter, take consecutive utterances, and
    together cover each chapter from its start, in order, without overlap."""
    _, _, source, pieces = splits
    chapters = chapter_frames(source)
    for L in LENGTHS:
        position = {}  # chapter -> (utterance index, offset) reached so far
        for piece in pieces[L]:
            parts = parse_segments(piece["segments"])
            names = [Path(p).stem.split("-") for p, _, _ in parts]
            keys = {(n[0], n[1]) for n in names}
            assert len(keys) == 1, piece  # one speaker, one chapter
            key = keys.pop()
            assert piece["spk_id"] == key[0] and piece["ID"].startswith("-".join(key) + "-")
            utts = chapters[key]
            index_of = {u[1]: i for i, u in enumerate(utts)}
            index, offset = position.get(key, (0, 0))
            total = 0
            for path, start, stop in parts:
                i = index_of[path]
                if offset == utts[index][2]:  # previous utterance used up
                    index, offset = index + 1, 0
                assert (i, start) == (index, offset), (piece, index, offset)
                assert 0 <= start < stop <= utts[i][2]
                offset = stop
                total += stop - start
            position[key] = (index, offset)
            assert total == round(float(piece["duration"]) * SR)


def test_every_piece_is_readable(ls, splits):
    _, _, _, pieces = splits
    cache = {}
    for L in LENGTHS:
        for n, piece in enumerate(pieces[L]):
            wav = read_piece(piece["segments"], ls)
            assert isinstance(wav, torch.Tensor) and wav.dtype == torch.float32
            assert wav.ndim == 1
            assert abs(wav.shape[0] - float(piece["duration"]) * SR) <= 2, piece
            if n % 25 == 0:  # content = the same samples read from whole files
                expected = []
                for path, start, stop in parse_segments(
                        piece["segments"].replace("$data_root", str(ls))):
                    if path not in cache:
                        cache[path] = sf.read(path, dtype="float32")[0]
                    expected.append(cache[path][start:stop])
                assert np.array_equal(wav.numpy(), np.concatenate(expected))


def test_speechbrain_pipeline(ls, splits):
    from speechbrain.dataio.dataio import read_audio

    save, _, _, pieces = splits
    data = piece_dataset(save / csv_name(5), ls)
    assert len(data) == len(pieces[5])
    item = data[1]
    assert item["sig"].shape[0] == round(item["duration"] * SR)
    # the same samples through speechbrain's own segment reader
    segments = pieces[5][1]["segments"].replace("$data_root", str(ls))
    sb = torch.cat([read_audio({"file": p, "start": a, "stop": b})
                    for p, a, b in parse_segments(segments)])
    assert torch.allclose(sb, item["sig"], atol=1e-6)


def test_statistics_and_figure(splits):
    save, result, source, pieces = splits
    stats = json.loads((save / "length_splits_stats.json").read_text())
    assert stats == result["stats"]
    assert stats["source"]["count"] == len(source)
    for L in LENGTHS:
        entry = stats["splits"][f"{L}s"]
        secs = [float(p["duration"]) for p in pieces[L]]
        assert entry["count"] == len(secs)
        assert entry["min_s"] == pytest.approx(min(secs), abs=1e-4)
        assert entry["max_s"] == pytest.approx(max(secs), abs=1e-4)
        assert entry["mean_s"] == pytest.approx(np.mean(secs), abs=1e-4)
        assert entry["hours"] == pytest.approx(sum(secs) / 3600, abs=1e-4)
        assert entry["spread_s"] <= 1.0
    means = [stats["splits"][f"{L}s"]["mean_s"] for L in LENGTHS]
    assert means == sorted(means)
    png = (save / "length_splits.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def test_other_length_and_spread_are_parameters(ls, splits, tmp_path):
    save, _, source, _ = splits
    result = prepare_length_splits(ls, tmp_path, [7], source_csvs=[save / "train-clean-100.csv"],
                                   max_spread=0.5)
    secs = [float(p["duration"]) for p in read_csv(tmp_path / "length_7s.csv")]
    assert min(secs) >= 7 and max(secs) <= 7.5 and max(secs) - min(secs) <= 0.5
    assert result["stats"]["splits"]["7s"]["count"] == len(secs)
    kept = sum(round(s * SR) for s in secs)
    assert kept == best_possible_kept(source, 7, spread=0.5)


def test_skip_if_done_and_reprepare(ls, splits, tmp_path, capsys):
    save, _, source, _ = splits
    src = tmp_path / "source.csv"
    src.write_text((save / "train-clean-100.csv").read_text())
    args = ["--data_folder", str(ls), "--save_folder", str(tmp_path / "out"),
            "--source_csv", str(src), "--lengths", "2", "4"]
    assert main(args) == 0
    out = tmp_path / "out"
    stamp = (out / "length_2s.csv").stat().st_mtime_ns
    again = prepare_length_splits(ls, out, [2, 4], source_csvs=[src])
    assert again["prepared"] == []
    assert (out / "length_2s.csv").stat().st_mtime_ns == stamp
    # another spread -> both re-made
    assert prepare_length_splits(ls, out, [2, 4], source_csvs=[src],
                                 max_spread=0.5)["prepared"] == ["2s", "4s"]
    # a changed source (one utterance fewer) -> re-made, without it
    lines = src.read_text().splitlines(keepends=True)
    src.write_text("".join(lines[:1] + lines[2:]))
    redo = prepare_length_splits(ls, out, [2], source_csvs=[src], max_spread=0.5)
    assert redo["prepared"] == ["2s"]
    dropped_wav = lines[1].split(",")[2]
    assert dropped_wav not in (out / "length_2s.csv").read_text()
    assert prepare_length_splits(ls, out, [2], skip_prep=True) is None


def test_short_chapters_and_remainders():
    rows = [{"ID": "1-10-0000", "duration": "0.5", "wav": "a", "spk_id": "1"},  # < L: dropped
            {"ID": "2-20-0001", "duration": "1.2", "wav": "c", "spk_id": "2"},
            {"ID": "2-20-0000", "duration": "1.3", "wav": "b", "spk_id": "2"}]
    pieces, info = make_pieces(rows, 2.0, max_spread=0.2, sample_rate=10)
    # chapter 2-20 (2.5 s, utterance 0000 first) -> one 2.2 s piece, 0.3 s dropped
    assert [(p["ID"], p["duration"], p["segments"]) for p in pieces] == [
        ("2-20-2s-0000", "2.2", "b:0:13;c:0:9")]
    assert info["dropped_chapters"] == 1 and info["dropped_seconds"] == pytest.approx(0.8)
    with pytest.raises(ValueError):
        cut_chapter([10], lo=0, hi=5)
