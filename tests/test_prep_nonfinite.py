"""Bad audio is found at preparation, not mid-training: NaN / Inf samples and
damaged data (full decode at preparation), files damaged after preparation
(``verify_manifest`` before training, ``read_piece`` while training), and
manifests written with the permissions ``open()`` gives."""
import os
import stat

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.audio_scan import scan_audio, verify_audio_files
from data_prep.done_record import DoneRecord
from data_prep.length_splits import (csv_name, main as length_splits_main, prepare_length_splits,
                                     verify_manifest)
from data_prep.length_splits.reading import manifest_frames
from data_prep.librispeech import main as librispeech_main, prepare_librispeech
from data_prep.manifests import atomic_write_text, write_csv
from speechbrain_ext.io.data import (AudioFileError, DataPreparationError, parse_segments, read_csv,
                                     read_piece)

SR = 16000
SPLIT = "train-clean-100"
CHAPTERS = (("11", "100"), ("22", "200"))
UTTS = 3  # per chapter, 1.5 s each


def noise(frames, seed):
    return (np.random.default_rng(seed).uniform(-0.5, 0.5, frames)).astype(np.float32)


@pytest.fixture
def tree(tmp_path):
    """A tiny LibriSpeech tree ``LibriSpeech/train-clean-100/SPK/CH/`` of
    16-bit FLAC files (as the real corpus) with transcripts.

    Returns ``(data_folder, [flac paths])``."""
    root = tmp_path / "LibriSpeech"
    paths = []
    for spk, chapter in CHAPTERS:
        folder = root / SPLIT / spk / chapter
        folder.mkdir(parents=True)
        lines = []
        for k in range(UTTS):
            uid = f"{spk}-{chapter}-{k:04d}"
            path = folder / f"{uid}.flac"
            sf.write(path, noise(int(1.5 * SR), len(paths)), SR)
            paths.append(path)
            lines.append(f"{uid} WORD NUMBER {k}")
        (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root, paths


def make_float(path, value, subtype="FLOAT", at=1234):
    """Rewrite ``path`` as float samples holding ``value`` at sample ``at``.

    FLAC stores integers only, so this is a WAV file under the ``.flac``
    name the LibriSpeech walk collects (libsndfile reads the format from
    the bytes): what a conversion script that wrote float data would leave."""
    data = noise(int(1.5 * SR), 99)
    data[at] = value
    sf.write(path, data, SR, format="WAV", subtype=subtype)
    assert sf.info(str(path)).subtype == subtype


def lines_naming(err, path):
    return [line for line in str(err).splitlines() if str(path) in line]


# ------------------------------------------------------- at preparation
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_nonfinite_float_file_refused_at_preparation(tree, tmp_path, value, word, subtype):
    root, paths = tree
    bad = paths[4]
    make_float(bad, value, subtype)
    for full_decode in (True, "float"):  # the default decodes float files too
        save = tmp_path / f"save_{full_decode}"
        with pytest.raises(DataPreparationError) as err:
            prepare_librispeech(root, save, [SPLIT], full_decode=full_decode, num_workers=1,
                                progress=False)
        named = lines_naming(err.value, bad)
        assert len(named) == 1 and f"1 {word} sample(s)" in named[0], str(err.value)
        assert "first at sample 1234" in named[0]
        assert [p.path for p in err.value.problems] == [str(bad)]
        assert not list(save.glob("*.csv")), "nothing is written when it stops"
    # skip_bad_files leaves it out and keeps the rest
    result = prepare_librispeech(root, tmp_path / "skip", [SPLIT], full_decode=True,
                                 skip_bad_files=True, num_workers=2, progress=False)
    assert [p.path for p in result.skipped] == [str(bad)]
    ids = {r["ID"] for r in read_csv(result.csv_files[SPLIT])}
    assert ids == {p.stem for p in paths} - {bad.stem}


def test_float_wav_files_through_scan_audio(tmp_path):
    """``.wav`` float files, finite and not, scanned directly."""
    good = tmp_path / "good.wav"
    sf.write(good, noise(SR, 1), SR, subtype="FLOAT")
    nan = tmp_path / "nan.wav"
    data = noise(10 * SR, 2)  # several decode blocks
    data[[5, 70000, 70001]] = np.nan
    data[100000] = np.inf
    sf.write(nan, data, SR, subtype="DOUBLE")
    for workers in (1, 2):
        scan = scan_audio([good, nan], num_workers=workers, progress=False)
        assert list(scan.frames) == [str(good)] and scan.decoded == 2
        assert [p.path for p in scan.problems] == [str(nan)]
        assert scan.problems[0].what.startswith("3 NaN and 1 Inf sample(s), the first at "
                                                "sample 5 ")
    header_only = scan_audio([good, nan], full_decode=False, num_workers=1, progress=False)
    assert not header_only.problems and header_only.decoded == 0


def test_integer_pcm_is_never_flagged(tmp_path):
    """Integer samples decode to finite floats whatever their bits: even the
    bit pattern of a float NaN / Inf, at full scale, is fine."""
    paths = []
    bits = np.array([0x7FC00000, 0x7F800000, -0x00800000, 2**31 - 1, -2**31], dtype=np.int32)
    for subtype in ("PCM_16", "PCM_24", "PCM_32"):
        path = tmp_path / f"{subtype}.wav"
        sf.write(path, np.tile(bits, 3000), SR, subtype=subtype)
        paths.append(path)
    flac = tmp_path / "full_scale.flac"
    sf.write(flac, np.tile(np.array([32767, -32768], dtype=np.int16), 8000), SR)
    paths.append(flac)
    scan = scan_audio(paths, full_decode=True, num_workers=1, progress=False)
    assert not scan.problems and scan.decoded == len(paths)
    assert len(scan.frames) == len(paths)
    # and the default reads their headers only
    assert scan_audio(paths, num_workers=1, progress=False).decoded == 0


def test_empty_and_undecodable_files(tree, tmp_path):
    root, paths = tree
    empty, cut, silent = paths[0], paths[1], paths[2]
    empty.write_bytes(b"")
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the FLAC header still says 1.5 s
    sf.write(silent, np.zeros((0,), dtype=np.float32), SR, format="WAV", subtype="FLOAT")
    scan = scan_audio(paths, full_decode=False, num_workers=1, progress=False)
    assert {p.path for p in scan.problems} == {str(empty), str(silent)}, "header-only"
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(root, tmp_path / "save", [SPLIT], full_decode=True,
                            num_workers=2, progress=False)
    assert "empty file (0 bytes)" in lines_naming(err.value, empty)[0]
    assert "undecodable audio" in lines_naming(err.value, cut)[0]
    assert "0 frames" in lines_naming(err.value, silent)[0]
    assert len(err.value.problems) == 3


def test_full_decode_after_header_only_run_rescans(tree, tmp_path):
    root, paths = tree
    bad = paths[3]
    make_float(bad, np.nan)
    save = tmp_path / "save"
    first = prepare_librispeech(root, save, [SPLIT], full_decode=False, progress=False)
    assert first.prepared == [SPLIT]  # headers only: the NaN file gets in
    assert bad.stem in {r["ID"] for r in read_csv(save / f"{SPLIT}.csv")}
    assert DoneRecord(save, "librispeech")._entries[SPLIT]["full_decode"] is False
    again = prepare_librispeech(root, save, [SPLIT], full_decode=False, progress=False)
    assert again.reused == [SPLIT]
    with pytest.raises(DataPreparationError) as err:
        prepare_librispeech(root, save, [SPLIT], full_decode=True, progress=False)
    assert lines_naming(err.value, bad)
    # the same through the length splits (their source is prepared the same way)
    lengths = tmp_path / "lengths"
    prepare_length_splits(root, lengths, [2], full_decode=False, num_workers=1)
    with pytest.raises(DataPreparationError) as err:
        prepare_length_splits(root, lengths, [2], num_workers=1)  # default: float files
    assert lines_naming(err.value, bad)
    done = prepare_length_splits(root, lengths, [2], skip_bad_files=True, num_workers=1)
    assert str(bad.name) not in (lengths / csv_name(2)).read_text()
    assert done["prepared"] == ["2s"]


def test_cli_flags(tree, tmp_path, capsys):
    root, paths = tree
    make_float(paths[5], np.inf)
    base = ["--data_folder", str(root), "--splits", SPLIT, "--num_workers", "1"]
    assert librispeech_main(base + ["--save_folder", str(tmp_path / "a"),
                                    "--header_only"]) == 0
    assert librispeech_main(base + ["--save_folder", str(tmp_path / "b"),
                                    "--full_decode"]) == 2
    err = capsys.readouterr().err
    assert f"{paths[5]}: 1 Inf sample(s)" in err
    assert length_splits_main(base + ["--save_folder", str(tmp_path / "c"),
                                      "--lengths", "2"]) == 2
    assert f"{paths[5]}: 1 Inf sample(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one or the other
        librispeech_main(base + ["--save_folder", str(tmp_path / "d"), "--full_decode",
                                 "--header_only"])


# ------------------------------------------------ before / while training
@pytest.fixture
def prepared(tree, tmp_path):
    root, paths = tree
    save = tmp_path / "prepared"
    prepare_length_splits(root, save, [2], num_workers=1)
    return root, paths, save


def test_verify_names_files_damaged_after_preparation(prepared):
    root, paths, save = prepared
    split_csv = save / csv_name(2)
    assert len(verify_manifest(split_csv, root, num_workers=1, progress=False).frames) == 6
    source_csv = save / f"{SPLIT}.csv"
    assert verify_manifest(source_csv, root, num_workers=2, progress=False).frames
    needed, exact = manifest_frames(split_csv, root)
    assert not exact and set(needed) <= {str(p) for p in paths}
    # a FLAC cut short keeps its length in the header: only its end shows it
    cut = paths[1]
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert sf.info(str(cut)).frames == int(1.5 * SR)
    for csv_path in (split_csv, source_csv):
        with pytest.raises(DataPreparationError) as err:
            verify_manifest(csv_path, root, num_workers=2, progress=False)
        assert [p.path for p in err.value.problems] == [str(cut)], str(err.value)
        assert "truncated" in lines_naming(err.value, cut)[0]
        assert "1 of 6 audio file(s)" in str(err.value)
    # a shorter WAV (its header says so), a deleted file, another rate
    short, gone, rate = paths[2], paths[3], paths[4]
    sf.write(short, noise(SR, 5), SR, format="WAV")
    gone.unlink()
    sf.write(rate, noise(int(1.5 * 8000), 6), 8000)
    with pytest.raises(DataPreparationError) as err:
        verify_manifest(source_csv, root, num_workers=1, progress=False, max_listed=2)
    problems = {p.path: p.what for p in err.value.problems}
    assert set(problems) == {str(cut), str(short), str(gone), str(rate)}
    assert problems[str(short)].startswith(f"{SR} frames, expected {int(1.5 * SR)}")
    assert problems[str(gone)] == "file does not exist"
    assert problems[str(rate)] == "sample rate is 8000 Hz, expected 16000 Hz"
    message = str(err.value)
    assert "4 of 6 audio file(s)" in message and "the first 2 listed" in message
    assert "... and 2 more" in message
    assert len([line for line in message.splitlines() if line.startswith("  /")]) == 2


def test_verify_audio_files_on_paths(tmp_path):
    good = tmp_path / "a.flac"
    sf.write(good, noise(SR, 0), SR)
    assert list(verify_audio_files([good], progress=False).frames) == [str(good)]
    with pytest.raises(DataPreparationError) as err:
        verify_audio_files({good: SR + 1}, progress=False)
    assert str(good) in str(err.value) and f"expected {SR + 1}" in str(err.value)
    # exact=False: the file must hold at least the frames
    assert verify_audio_files({good: SR - 1}, exact=False, progress=False).frames
    with pytest.raises(DataPreparationError):
        verify_audio_files({good: SR + 1}, exact=False, progress=False)


def piece_of(save, path):
    for row in read_csv(save / csv_name(2)):
        if any(p.endswith(path.name) for p, _, _ in parse_segments(row["segments"])):
            return row["segments"]
    raise AssertionError(f"no piece reads {path}")


def test_read_piece_names_the_file(prepared):
    root, paths, save = prepared
    original = {p: p.read_bytes() for p in paths}
    segments = piece_of(save, paths[1])
    assert read_piece(segments, root).shape[0] > 0
    # NaN in the middle of the piece's part of the file
    start, stop = [(a, b) for p, a, b in parse_segments(segments) if p.endswith(paths[1].name)][0]
    make_float(paths[1], np.nan, at=(start + stop) // 2)
    with pytest.raises(AudioFileError) as err:
        read_piece(segments, root)
    assert str(err.value).startswith(f"{paths[1]}: 1 NaN/Inf sample(s) in samples {start}:{stop}")
    assert err.value.path == str(paths[1])
    assert isinstance(err.value, ValueError)  # what read_piece raised before
    paths[1].write_bytes(original[paths[1]])
    # one damage at a time (a piece may read several files)
    for k, damage, words in (
            (4, lambda p: p.unlink(), "file does not exist"),
            (0, lambda p: sf.write(p, noise(2 * 8000, 1), 8000),
             "sample rate is 8000 Hz, expected 16000 Hz"),
            (2, lambda p: sf.write(p, noise(100, 1), SR, format="WAV"), "100 frames, but"),
            (5, lambda p: p.write_bytes(original[p][:len(original[p]) // 3]),
             "undecodable audio"),
            (3, lambda p: p.write_bytes(b"not audio at all" * 100), "unreadable audio"),
            (2, lambda p: sf.write(p, np.zeros((2 * SR, 2)), SR), "2 channels, expected mono")):
        segments = piece_of(save, paths[k])
        damage(paths[k])
        with pytest.raises(AudioFileError) as err:
            read_piece(segments, root)
        assert str(err.value).startswith(f"{paths[k]}: ") and words in str(err.value), \
            str(err.value)
        paths[k].write_bytes(original[paths[k]])
        assert read_piece(segments, root).shape[0] > 0


def test_read_piece_is_unchanged_on_good_files(prepared):
    root, paths, save = prepared
    for row in read_csv(save / csv_name(2)):
        wav = read_piece(row["segments"], root)
        expected = np.concatenate([sf.read(p, start=a, stop=b, dtype="float32")[0]
                                   for p, a, b in parse_segments(
                                       row["segments"].replace("$data_root", str(root)))])
        assert wav.dtype == torch.float32 and torch.equal(wav, torch.from_numpy(expected))


# ------------------------------------------------------------ permissions
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_prepared_files_get_open_permissions(tree, tmp_path, umask):
    root, _ = tree
    old = os.umask(umask)
    try:
        save = tmp_path / "save"
        prepare_length_splits(root, save, [2], num_workers=1)
        write_csv(tmp_path / "x.csv", [{"ID": "a"}], ["ID"])
        atomic_write_text(tmp_path / "x.txt", "hello\n")
        with open(tmp_path / "reference", "w"):
            pass
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "reference").st_mode) == expected
    written = [tmp_path / "x.csv", tmp_path / "x.txt", save / f"{SPLIT}.csv",
               save / csv_name(2), save / "length_splits_stats.json",
               save / "librispeech_prep_options.json", save / "length_splits_prep_options.json"]
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == expected, (path, oct(expected))
    assert not list(save.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))
