"""The synthetic LibriSpeech / Libri-light corpora: layout, audio, metadata,
determinism, and the generator's handling of bad output folders."""
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.synthetic import CorpusFolderError, generate
from data_prep.synthetic.core import MARKER, PARTIAL_SENTINEL
from data_prep.synthetic.espeak import UnknownVoiceError, get_engine
from data_prep.synthetic.lexicon import ARPABET
from data_prep.synthetic.text import SentenceGenerator, vocabulary

SUBSETS = ("train-clean-100", "dev-clean", "test-clean")
UTT_RE = re.compile(r"^(\d+)-(\d+)-(\d{4})\.flac$")


def read_transcripts(folder):
    """{utterance id: text} from every *.trans.txt below ``folder``."""
    texts = {}
    for trans in Path(folder).rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            assert uid not in texts, f"{uid} transcribed twice"
            texts[uid] = text
    return texts


@pytest.fixture(scope="module")
def librispeech(mini_corpus):
    root, stats = mini_corpus
    return root / "LibriSpeech", stats["librispeech"]


def test_librispeech_layout_and_transcripts(librispeech):
    ls, _ = librispeech
    speakers_by_subset = {}
    for subset in SUBSETS:
        flacs = sorted((ls / subset).rglob("*.flac"))
        assert flacs, f"no audio in {subset}"
        texts = read_transcripts(ls / subset)
        ids = set()
        for flac in flacs:
            m = UTT_RE.match(flac.name)
            assert m, f"bad file name {flac}"
            spk, chapter, _ = m.groups()
            # SPK/CHAPTER/SPK-CHAPTER-UTT.flac, transcript next to it
            assert flac.parent.name == chapter and flac.parent.parent.name == spk
            assert (flac.parent / f"{spk}-{chapter}.trans.txt").is_file()
            ids.add(flac.stem)
        # every file transcribed, every transcript has its file
        assert ids == set(texts)
        for text in texts.values():
            assert text == text.upper() and re.fullmatch(r"[A-Z' ]+", text), text
        speakers_by_subset[subset] = {f.parent.parent.name for f in flacs}
    # the subsets share no speaker (as in LibriSpeech)
    a, b, c = speakers_by_subset.values()
    assert not (a & b) and not (a & c) and not (b & c)
    speakers_txt = (ls / "SPEAKERS.TXT").read_text()
    for spk in set().union(*speakers_by_subset.values()):
        assert re.search(rf"^{spk}\s*\| [FM] \|", speakers_txt, re.M), spk


def test_librispeech_audio_format_and_durations(librispeech):
    ls, stats = librispeech
    durations = []
    for flac in sorted(ls.rglob("*.flac")):
        info = sf.info(flac)
        assert info.samplerate == 16000 and info.channels == 1, flac
        assert info.format == "FLAC"
        durations.append(info.frames / 16000)
    durations = np.array(durations)
    # about 1 s to 25 s, with material for every length split (1/5/10/15 s)
    assert durations.min() >= 0.8 and durations.max() <= 25.0
    assert durations.min() < 3.0 and durations.max() > 20.0
    assert (durations >= 15).sum() >= 10
    assert abs(durations.sum() / 3600 - stats["hours"]) < 1e-3
    assert stats["recordings"] == len(durations)


def test_audio_is_speech_not_silence(librispeech):
    ls, _ = librispeech
    flac = sorted((ls / "dev-clean").rglob("*.flac"))[0]
    wav, _ = sf.read(flac)
    frames = wav[: len(wav) // 400 * 400].reshape(-1, 400)
    energy_db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    # speech has a dynamic range between pauses and voiced frames
    assert energy_db.max() - np.median(energy_db) > 6
    assert np.abs(wav).max() > 0.05


def test_lexicon_covers_transcripts_with_arpabet(librispeech):
    ls, _ = librispeech
    lexicon = {}
    for line in (ls / "librispeech-lexicon.txt").read_text().splitlines():
        word, phones = line.split("\t")
        lexicon[word] = phones.split()
    words = {w for text in read_transcripts(ls).values() for w in text.split()}
    assert words <= set(lexicon)
    used = {p.rstrip("012") for phones in lexicon.values() for p in phones}
    assert used <= set(ARPABET) and len(used) >= 35
    assert lexicon["STOPPED"][-1] == "T" and lexicon["CATS"][-1] == "S"


def test_librilight_layout(mini_corpus):
    root, stats = mini_corpus
    ll = root / "librispeech_finetuning"
    for fold in [f"1h/{k}" for k in range(6)] + ["9h"]:
        for quality in ("clean", "other"):
            flacs = list((ll / fold / quality).rglob("*.flac"))
            assert flacs, f"{fold}/{quality} is empty"
            texts = read_transcripts(ll / fold / quality)
            assert {f.stem for f in flacs} == set(texts)
    nine = len(list((ll / "9h").rglob("*.flac")))
    one = len(list((ll / "1h").rglob("*.flac")))
    assert nine > one  # 9 h is the bigger part of 10 h
    ls_ids = {f.stem for f in (root / "LibriSpeech").rglob("*.flac")}
    ll_ids = {f.stem for f in ll.rglob("*.flac")}
    assert not ls_ids & ll_ids  # distinct utterance ids


def test_vocabulary_and_sentences():
    vocab = vocabulary()
    assert len(vocab) >= 3000 and len(set(vocab)) == len(vocab)
    gen = SentenceGenerator(np.random.default_rng(1))
    seen = set()
    for _ in range(2000):
        seen.update(gen.sentence(12).split())
    assert len(seen) >= 2000 and seen <= set(vocab)
    a = SentenceGenerator(np.random.default_rng(7)).sentence(20)
    b = SentenceGenerator(np.random.default_rng(7)).sentence(20)
    assert a == b and len(a.split()) >= 20


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(UnknownVoiceError, match="no-such-voice"):
        get_engine().synthesize("hello", voice="no-such-voice")


def _hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name != MARKER}


def test_same_seed_gives_identical_files(tmp_path):
    keys = ["librispeech", "librilight"]
    generate(tmp_path / "a", seed=3, size="tiny", corpora=keys, jobs=1, log=lambda *a: None)
    generate(tmp_path / "b", seed=3, size="tiny", corpora=keys, jobs=2, log=lambda *a: None)
    generate(tmp_path / "c", seed=4, size="tiny", corpora=["librispeech"], jobs=2,
             log=lambda *a: None)
    for folder in ("LibriSpeech", "librispeech_finetuning"):
        a, b = _hashes(tmp_path / "a" / folder), _hashes(tmp_path / "b" / folder)
        assert a and a == b
    assert _hashes(tmp_path / "a" / "LibriSpeech") != _hashes(tmp_path / "c" / "LibriSpeech")


def test_rerun_skips_and_damaged_corpus_is_regenerated(tmp_path):
    messages = []
    generate(tmp_path, size="tiny", corpora=["librispeech"], log=messages.append)
    ls = tmp_path / "LibriSpeech"
    before = _hashes(ls)
    generate(tmp_path, size="tiny", corpora=["librispeech"], log=messages.append)
    assert "up to date" in messages[-1]
    # a deleted file makes the corpus incomplete: it is rebuilt identically
    victim = sorted(ls.rglob("*.flac"))[0]
    victim.unlink()
    generate(tmp_path, size="tiny", corpora=["librispeech"], log=messages.append)
    assert "regenerating" in " ".join(messages[-2:])
    assert _hashes(ls) == before


def test_interrupted_build_is_never_accepted(tmp_path):
    # A folder left by a build that was killed half-way (sentinel, no marker)
    broken = tmp_path / "LibriSpeech"
    (broken / "train-clean-100").mkdir(parents=True)
    (broken / PARTIAL_SENTINEL).write_text("")
    (tmp_path / "LibriSpeech.partial").mkdir()
    generate(tmp_path, size="tiny", corpora=["librispeech"], log=lambda *a: None)
    assert (broken / MARKER).is_file() and not (broken / PARTIAL_SENTINEL).exists()
    assert not (tmp_path / "LibriSpeech.partial").exists()
    assert list(broken.rglob("*.flac"))


def test_foreign_folder_is_not_overwritten(tmp_path):
    real = tmp_path / "LibriSpeech" / "train-clean-100"
    real.mkdir(parents=True)
    (real / "precious.flac").write_bytes(b"user data")
    with pytest.raises(CorpusFolderError, match="not written by the synthetic"):
        generate(tmp_path, size="tiny", corpora=["librispeech"], log=lambda *a: None)
    assert (real / "precious.flac").read_bytes() == b"user data"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(CorpusFolderError, match="not writable"):
        generate(locked / "out", size="tiny", corpora=["librispeech"])


def test_unwritable_output_folder_cli(tmp_path, capsys):
    from data_prep.synthetic.__main__ import main

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    # a path below a regular file can never be created, even by root
    assert main(["--out", str(blocker / "out"), "--size", "tiny", "--only", "librispeech"]) == 2
    assert "not writable" in capsys.readouterr().err
