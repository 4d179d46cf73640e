"""Frame-level phone alignments of the synthetic LibriSpeech: espeak's
phoneme events through synthesis, the lead silence and the worker processes,
the CPC file layout, and its reader's errors."""
import hashlib
import shutil

import numpy as np
import pytest
import soundfile as sf

from data_prep.synthetic import generate
from data_prep.synthetic import alignments as al
from data_prep.synthetic.core import Recording, Renderer, synthesize_recording
from data_prep.synthetic.librispeech import SIZES, plan_librispeech, utterance_id
from data_prep.synthetic.voices import make_speakers
from speechbrain_ext.io import alignments as fmt

SEED = 3
SUBSETS = ("train-clean-100", "dev-clean", "test-clean")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The tiny LibriSpeech built with one and with two workers."""
    roots = {}
    for jobs in (1, 2):
        root = tmp_path_factory.mktemp(f"jobs{jobs}")
        generate(root, seed=SEED, size="tiny", corpora=["librispeech"], jobs=jobs,
                 log=lambda *a: None)
        roots[jobs] = root / "LibriSpeech"
    return roots


@pytest.fixture(scope="module")
def corpus(corpora):
    ls = corpora[1]
    return ls, fmt.read_alignments(ls / fmt.LABELS_FOLDER)


@pytest.fixture(scope="module")
def rendered(corpus, tmp_path_factory):
    """The corpus's recordings rendered again, with their events."""
    recordings, _, _ = plan_librispeech(SEED, SIZES["tiny"])
    root = tmp_path_factory.mktemp("rerender")
    with Renderer(jobs=1) as renderer:
        _, events = renderer.render(recordings, root, SEED, return_events=True)
    return root, recordings, events


def _flacs(ls):
    return {f.stem: f for subset in SUBSETS for f in (ls / subset).rglob("*.flac")}


def _frame_rms(wav):
    frames = wav[: len(wav) // al.FRAME_SAMPLES * al.FRAME_SAMPLES]
    return np.sqrt((frames.reshape(-1, al.FRAME_SAMPLES) ** 2).mean(axis=1))


def test_files_exist_and_parse(corpus):
    ls, aligned = corpus
    folder = ls / fmt.LABELS_FOLDER
    for name in (fmt.ALIGNMENT_FILE, fmt.PHONES_FILE, fmt.TRAIN_FILE, fmt.TEST_FILE):
        assert (folder / name).is_file(), name
    flacs = _flacs(ls)
    assert set(aligned.labels) == set(flacs)
    lines = (folder / fmt.ALIGNMENT_FILE).read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == sorted(flacs)
    assert all(line.split(" ")[1:] and all(t.isdigit() for t in line.split(" ")[1:])
               for line in lines)
    phones = aligned.phones
    assert phones[0] == "SIL" and phones[1:] == sorted(phones[1:])
    assert len(set(phones)) == len(phones) and aligned.num_phones == len(phones)
    used = np.unique(np.concatenate(list(aligned.labels.values())))
    assert used.tolist() == list(range(len(phones)))  # derived from what occurs
    assert not any(set(p) & set(al.STRESS_MARKS) or p.startswith("_") for p in phones)
    assert {"s", "t", "n", "D", "@"} <= set(phones) and len(phones) >= 40
    # every utterance starts and ends in silence (lead and tail padding)
    assert all(v[0] == 0 and v[-1] == 0 for v in aligned.labels.values())


def test_frame_count_matches_audio(corpus):
    ls, aligned = corpus
    for uid, flac in _flacs(ls).items():
        assert len(aligned.labels[uid]) == sf.info(flac).frames // 160, uid


def test_train_test_split_by_speaker(corpus):
    ls, aligned = corpus
    train100 = {f.stem for f in (ls / "train-clean-100").rglob("*.flac")}
    assert aligned.train_ids == sorted(aligned.train_ids)
    assert aligned.test_ids == sorted(aligned.test_ids)
    assert set(aligned.train_ids) | set(aligned.test_ids) == train100
    train_spk = {u.split("-")[0] for u in aligned.train_ids}
    test_spk = {u.split("-")[0] for u in aligned.test_ids}
    assert train_spk and test_spk and not train_spk & test_spk
    n = len(train_spk | test_spk)
    assert len(test_spk) == max(1, round(n / 4))


def test_silence_frames_are_silent(corpus):
    ls, aligned = corpus
    ratios, sil_all, speech_all = [], [], []
    for uid, flac in _flacs(ls).items():
        rms = _frame_rms(sf.read(flac, dtype="float32")[0])
        labels = aligned.labels[uid]
        sil, speech = rms[labels == 0], rms[labels != 0]
        assert len(sil) and len(speech), uid
        ratios.append(np.median(sil) / np.median(speech))
        # as quiet as the noise floor of the lead padding (>= 50 ms)
        assert np.median(sil) < 1.5 * np.median(rms[:4]), uid
        sil_all.append(sil)
        speech_all.append(speech)
    pooled = np.median(np.concatenate(sil_all)) / np.median(np.concatenate(speech_all))
    # Every channel has a noise floor (18-35 dB below the mean speech
    # power) and some reverberate: silence is about 0.13 of speech pooled.
    assert pooled < 0.2, pooled
    assert max(ratios) < 0.3, sorted(ratios)


def test_rendered_events_give_the_written_labels(corpus, rendered):
    ls, aligned = corpus
    root, recordings, events = rendered
    flacs = _flacs(ls)
    for rec in recordings:
        uid = utterance_id(rec.path)
        # the same audio as the corpus's, so the same events
        assert (root / rec.path).read_bytes() == flacs[uid].read_bytes()
        names = al.frame_labels(events[rec.path], sf.info(flacs[uid]).frames)
        assert [aligned.phones[i] for i in aligned.labels[uid]] == names, uid


def test_word_events_line_up_with_phone_starts(corpus, rendered):
    _, aligned = corpus
    _, recordings, events = rendered
    checked = after_silence = 0
    for rec in recordings:
        labels = aligned.labels[utterance_id(rec.path)]
        starts = np.flatnonzero(np.diff(labels) != 0) * 160 + 160  # label changes
        evs = events[rec.path]
        bounds = al.phone_boundaries(evs, len(labels) * 160)
        words = [(i, e) for i, e in enumerate(evs) if e[0] == "word"]
        # espeak speaks some word pairs as one ("of the")
        assert set(w for _, (_, w, _) in words) <= set(rec.text.split())
        assert len(words) >= 0.9 * len(rec.text.split())
        for i, (_, word, sample) in words:
            # phone in force just before the word's event
            before = [p for s, p in bounds if s < sample][-1]
            first = next(e for e in evs[i + 1:] if e[0] == "phoneme")
            if before == al.SIL:
                # after silence the word starts at its first phoneme's event
                after_silence += 1
                target, previous = first[2], al.SIL
            else:
                target, previous = sample, before
            if al.normalise_phone(first[1]) != previous:  # a visible change
                assert np.abs(starts - target).min() <= 160, (rec.path, word, sample)
                checked += 1
            # and the frames from the word's event to its first phoneme are
            # silence after silence, or the word's first phone otherwise
            k0, k1 = -(-(sample - 80) // 160), -(-(first[2] - 80) // 160)
            if before == al.SIL:
                assert (labels[k0:k1] == 0).all(), (rec.path, word)
    assert checked > 100 and after_silence >= len(recordings)


def test_event_positions_include_the_lead_silence():
    # A clean channel keeps exact zeros where espeak is silent.
    spk = make_speakers(np.random.default_rng(0), 1, clean=True)[0]
    rec = Recording(path="x/1-2-0000.flac", text="THE CAT SAT ON THE MAT", speaker=spk)
    wav, events = synthesize_recording(rec, SEED, return_events=True)
    kinds = [k for k, _, _ in events]
    assert kinds[0] == "sentence" and kinds[-1] == "end"
    lead = events[0][2]
    assert 0.05 * 16000 <= lead <= 0.3 * 16000
    positions = [s for _, _, s in events]
    assert positions == sorted(positions) and positions[-1] <= len(wav)
    first_phone = next(s for k, _, s in events if k == "phoneme")
    quiet = 1e-3 * np.abs(wav).max()  # resampling rings a few samples
    assert np.abs(wav[:first_phone - 32]).max() < quiet
    assert np.abs(wav[first_phone:first_phone + 800]).max() > 100 * quiet
    assert np.abs(wav[events[-1][2] + 32:]).max() < quiet  # nothing after the end
    assert _spoken_words(events) == ["THE", "CAT", "SAT", "ON", "MAT"]  # "on the": one


def _spoken_words(events):
    return [w for k, w, _ in events if k == "word"]


def test_shortened_recording_keeps_events_of_the_final_synthesis():
    spk = make_speakers(np.random.default_rng(1), 1, clean=True)[0]
    text = " ".join(["THE QUICK BROWN FOX JUMPED OVER THE LAZY DOG"] * 4)
    rec = Recording(path="x/1-2-0001.flac", text=text, speaker=spk, max_seconds=3.0)
    wav, events = synthesize_recording(rec, SEED, return_events=True)
    kept = rec.text.split()
    assert len(kept) < len(text.split())
    spoken = _spoken_words(events)
    assert spoken[0] == "THE" and spoken[-1] == kept[-1]
    assert len(kept) - 2 <= len(spoken) <= len(kept)
    assert events[-1][0] == "end" and events[-1][2] <= len(wav)


def test_phone_rules():
    assert [al.normalise_phone(p) for p in ("'oU", ",aI", "%I", "n-", "_!", "_")] == [
        "oU", "aI", "I", "n-", "SIL", "SIL"]
    # a word's pause joins its first phone after a phone, stays SIL after SIL
    events = [("sentence", "", 0), ("word", "A", 0), ("phoneme", "k", 500),
              ("phoneme", "'a", 900), ("word", "B", 1400), ("phoneme", "t", 1700),
              ("phoneme", "_:", 2000), ("word", "C", 2600), ("phoneme", "m", 2800),
              ("word", "D", 2800), ("phoneme", "'i:", 3100), ("end", "", 3400)]
    assert al.phone_segments(events, 3600) == [
        ("SIL", 0, 500), ("k", 500, 900), ("a", 900, 1400), ("t", 1400, 2000),
        ("SIL", 2000, 2800), ("m", 2800, 3100), ("i:", 3100, 3400), ("SIL", 3400, 3600)]
    labels = al.frame_labels(events, 3600)
    assert len(labels) == 22 and labels[:4] == ["SIL", "SIL", "SIL", "k"]


def _hashes(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_job_count_gives_identical_alignments(corpora):
    one, two = (corpora[j] / fmt.LABELS_FOLDER for j in (1, 2))
    assert len(_hashes(one)) == 4 and _hashes(one) == _hashes(two)


def test_reader_errors_name_file_and_line(corpus, tmp_path):
    ls, aligned = corpus
    folder = tmp_path / "labels"
    shutil.copytree(ls / fmt.LABELS_FOLDER, folder)
    aligned_file = folder / fmt.ALIGNMENT_FILE
    good = aligned_file.read_text().splitlines()

    def corrupt(line_number, text):
        lines = list(good)
        lines[line_number - 1] = text
        aligned_file.write_text("\n".join(lines) + "\n")

    uid = good[2].split()[0]
    where = rf"{fmt.ALIGNMENT_FILE}:3:"
    corrupt(3, good[2] + " x7")
    with pytest.raises(fmt.AlignmentError, match=rf"{where} phone index 'x7' of {uid} is not an integer"):
        fmt.read_alignments(folder)
    corrupt(3, uid)
    with pytest.raises(fmt.AlignmentError, match=rf"{where} expected '<utterance id> <phone index> \.\.\.'"):
        fmt.read_alignments(folder)
    corrupt(3, f"{good[2]} {len(aligned.phones)}")
    with pytest.raises(fmt.AlignmentError,
                       match=rf"{where} phone index {len(aligned.phones)} in {uid}, but .*{fmt.PHONES_FILE}"):
        fmt.read_alignments(folder)
    corrupt(3, good[1])
    with pytest.raises(fmt.AlignmentError, match=rf"{where} .* already aligned on line 2"):
        fmt.read_alignments(folder)
    aligned_file.write_text("\n".join(good) + "\n")
    (folder / fmt.TEST_FILE).write_text("no-such-utterance\n")
    with pytest.raises(fmt.AlignmentError, match=rf"{fmt.TEST_FILE}:1:"):
        fmt.read_alignments(folder)
    (folder / fmt.TEST_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=fmt.TEST_FILE):
        fmt.read_alignments(folder)


def test_reader_without_phone_names(corpus, tmp_path):
    # the public release has no phones.txt: indices only
    ls, aligned = corpus
    folder = tmp_path / "labels"
    shutil.copytree(ls / fmt.LABELS_FOLDER, folder)
    (folder / fmt.PHONES_FILE).unlink()
    bare = fmt.read_alignments(folder)
    assert bare.phones is None and bare.num_phones == len(aligned.phones)
    assert bare.train_ids == aligned.train_ids and bare.test_ids == aligned.test_ids
    for uid, labels in aligned.labels.items():
        assert labels.dtype == np.int64 and np.array_equal(bare.labels[uid], labels)
