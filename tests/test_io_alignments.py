"""The CPC-layout phone alignment folder (speechbrain_ext.io.alignments): what
write_alignments writes reads back, and every malformed file is an error
naming its file and line."""
import numpy as np
import pytest

from speechbrain_ext.io.alignments import (ALIGNMENT_FILE, PHONES_FILE, TEST_FILE, TRAIN_FILE, AlignmentError,
                                           Alignments, read_alignments, write_alignments)

PHONES = ["SIL", "a", "k", "t"]
LABELS = {"19-198-0001": [0, 0, 2, 2, 1, 1, 0], "19-198-0000": [0, 3, 3, 0],
          "26-495-0000": [0, 1, 1, 2, 0], "26-495-0003": [0, 0, 0]}
TRAIN, TEST = ["19-198-0001", "19-198-0000"], ["26-495-0003", "26-495-0000"]


@pytest.fixture
def folder(tmp_path):
    write_alignments(tmp_path / "labels", LABELS, TRAIN, TEST, PHONES)
    return tmp_path / "labels"


def test_round_trip_and_the_written_bytes(folder):
    assert (folder / ALIGNMENT_FILE).read_bytes() == (
        b"19-198-0000 0 3 3 0\n19-198-0001 0 0 2 2 1 1 0\n26-495-0000 0 1 1 2 0\n26-495-0003 0 0 0\n")
    assert (folder / TRAIN_FILE).read_bytes() == b"19-198-0000\n19-198-0001\n"
    assert (folder / TEST_FILE).read_bytes() == b"26-495-0000\n26-495-0003\n"
    assert (folder / PHONES_FILE).read_bytes() == b"SIL\na\nk\nt\n"
    aligned = read_alignments(folder)
    assert isinstance(aligned, Alignments)
    assert aligned.phones == PHONES and aligned.num_classes == aligned.num_phones == 4
    assert aligned.train_ids == sorted(TRAIN) and aligned.test_ids == sorted(TEST)
    assert set(aligned.labels) == set(LABELS)
    for uid, values in LABELS.items():
        assert aligned.labels[uid].dtype == np.int64 and aligned.labels[uid].tolist() == values
    # again from what was read: the same bytes
    again = folder.parent / "again"
    write_alignments(again, aligned.labels, aligned.train_ids, aligned.test_ids, aligned.phones)
    assert all((again / f.name).read_bytes() == f.read_bytes() for f in folder.iterdir())


def test_without_phones_the_class_count_is_the_largest_index_plus_one(folder):
    write_alignments(folder, {u: np.array(v, dtype=np.uint16) for u, v in LABELS.items()}, TRAIN, TEST)
    assert not (folder / PHONES_FILE).exists()  # the earlier one is removed
    aligned = read_alignments(folder)
    assert aligned.phones is None and aligned.num_classes == 4


def test_split_order_and_blank_lines_are_kept_as_read(folder):
    (folder / TRAIN_FILE).write_text("19-198-0001\n\n19-198-0000\n")
    assert read_alignments(folder).train_ids == ["19-198-0001", "19-198-0000"]


def _insert(path, number, line):
    lines = path.read_text().splitlines()
    lines.insert(number - 1, line)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("line, message", [
    ("19-198-0009", "expected '<utterance id> <phone index> ...'"),
    ("19-198-0009 0 1 x 2", "phone index 'x' of 19-198-0009 is not an integer"),
    ("19-198-0009 0 1.5 2", "phone index '1.5' of 19-198-0009 is not an integer"),
    ("19-198-0009 0 -1 2", "negative phone index -1 in 19-198-0009"),
    ("19-198-0009 0 1 4", "phone index 4 in 19-198-0009, but"),
    ("19_198_0009 0 1 2", "'19_198_0009' is not a LibriSpeech utterance id"),
    ("19-198-0000 0 1 2", "19-198-0000 already aligned on line 1"),
])
def test_a_malformed_alignment_line_is_named(folder, line, message):
    path = folder / ALIGNMENT_FILE
    _insert(path, 3, line)
    with pytest.raises(AlignmentError, match=f"^{path}:3: ") as err:
        read_alignments(folder)
    assert message in str(err.value)


def test_an_implausible_index_without_phones(folder):
    (folder / PHONES_FILE).unlink()
    _insert(folder / ALIGNMENT_FILE, 2, "19-198-0009 0 40000")
    with pytest.raises(AlignmentError, match=f"{folder / ALIGNMENT_FILE}:2: .*implausibly large"):
        read_alignments(folder)


def test_split_errors(folder):
    train, test = folder / TRAIN_FILE, folder / TEST_FILE
    original = test.read_text()
    test.write_text(original + "7-8-9\n")
    with pytest.raises(AlignmentError, match=f"^{test}:3: 7-8-9 has no alignment in {folder / ALIGNMENT_FILE}"):
        read_alignments(folder)
    test.write_text(original + "26-495-0000\n")
    with pytest.raises(AlignmentError, match=f"^{test}:3: 26-495-0000 already listed on line 1"):
        read_alignments(folder)
    test.write_text(original + "19-198-0001\n")
    with pytest.raises(AlignmentError, match=f"^{test}:3: 19-198-0001 is also in {train} \\(line 2\\)"):
        read_alignments(folder)
    test.write_text(original + "26-495-0000 26-495-0003\n")
    with pytest.raises(AlignmentError, match=f"^{test}:3: expected one utterance id a line"):
        read_alignments(folder)
    test.write_text("\n")
    with pytest.raises(AlignmentError, match=f"^{test}: no utterance ids"):
        read_alignments(folder)


def test_phone_file_errors(folder):
    phones = folder / PHONES_FILE
    phones.write_text("SIL\na\nk\na\n")
    with pytest.raises(AlignmentError, match=f"^{phones}:4: phone 'a' already named on line 2"):
        read_alignments(folder)
    phones.write_text("SIL\n\na\nk\nt\n")
    with pytest.raises(AlignmentError, match=f"^{phones}:2: expected one phone name a line"):
        read_alignments(folder)
    phones.write_text("SIL\na b\n")
    with pytest.raises(AlignmentError, match=f"^{phones}:2: expected one phone name a line"):
        read_alignments(folder)
    phones.write_text("")
    with pytest.raises(AlignmentError, match=f"^{phones}: no phone names"):
        read_alignments(folder)


def test_an_empty_alignment_file(folder):
    (folder / ALIGNMENT_FILE).write_text("\n")
    with pytest.raises(AlignmentError, match=f"^{folder / ALIGNMENT_FILE}: no aligned utterances"):
        read_alignments(folder)


def test_alignment_error_is_a_value_error():
    assert issubclass(AlignmentError, ValueError)


@pytest.mark.parametrize("missing", [ALIGNMENT_FILE, TRAIN_FILE, TEST_FILE])
def test_a_missing_file_is_named(folder, missing):
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{folder / missing}: missing from the phone alignment folder"):
        read_alignments(folder)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}: no phone alignment folder"):
        read_alignments(tmp_path / "nowhere")


@pytest.mark.parametrize("labels, train, test, phones, message", [
    ({**LABELS, "19-198-0002": []}, TRAIN, TEST, PHONES, "labels of 19-198-0002 must be a non-empty"),
    ({**LABELS, "19-198-0002": [0.5]}, TRAIN, TEST, PHONES, "labels of 19-198-0002 must be a non-empty"),
    ({**LABELS, "19-198-0002": [0, -1]}, TRAIN, TEST, PHONES, "phone index -1 in 19-198-0002 is out of range"),
    ({**LABELS, "19-198-0002": [0, 4]}, TRAIN, TEST, PHONES, "phone index 4 in 19-198-0002 is out of range 0-3"),
    ({**LABELS, "x 1": [0]}, TRAIN, TEST, PHONES, "'x 1' is not a LibriSpeech utterance id"),
    ({}, [], [], PHONES, "no aligned utterances"),
    (LABELS, TRAIN, [], PHONES, "no test utterance ids"),
    (LABELS, TRAIN + ["7-8-9"], TEST, PHONES, "train utterance 7-8-9 has no labels"),
    (LABELS, TRAIN + TRAIN[:1], TEST, PHONES, "train utterance 19-198-0001 listed twice"),
    (LABELS, TRAIN, TEST + TRAIN[:1], PHONES, "19-198-0001 is in both splits"),
    (LABELS, TRAIN, TEST, ["SIL", "a", "a", "t"], "phone 'a' named twice"),
    (LABELS, TRAIN, TEST, ["SIL", "a b", "k", "t"], "phone names must be single words"),
    (LABELS, TRAIN, TEST, [], "no phone names"),
])
def test_the_writer_refuses_what_the_reader_rejects(tmp_path, labels, train, test, phones, message):
    with pytest.raises(AlignmentError, match=message):
        write_alignments(tmp_path / "labels", labels, train, test, phones)
    assert not (tmp_path / "labels").exists()  # nothing written
