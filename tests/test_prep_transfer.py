"""Paper 002 Table 5's transfer corpora (TED-LIUM 3, VoxPopuli English,
Fisher + Switchboard): each preparation on its synthetic stand-in checked
against the stand-in's own metadata (rows, segment durations, normalised
transcripts), the deterministic subsets, the bad-input errors and the
8 kHz conversion; and paper 003 Fig. 1's lower panel drawn from the mini
corpora's manifests."""
import csv
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import fisher_swbd, length_distributions, tedlium3
from data_prep.fisher_swbd import fisher_text, prepare_fisher_swbd, swbd_text
from data_prep.length_splits import verify_manifest
from data_prep.synthetic import CORPORA, DEFAULT_CORPORA, ON_REQUEST, generate
from data_prep.synthetic.tedlium3 import sphere_header
from data_prep.tedlium3 import letters_text, prepare_tedlium3, select_units
from data_prep.voxpopuli import prepare_voxpopuli, speech_of
from speechbrain_ext.downstream.vocabulary import LetterVocabulary
from speechbrain_ext.io.data import DataPreparationError, read_csv, read_piece

SR = 16000
TRANSFER = ("tedlium3", "voxpopuli_en", "fisher_swbd")
SEGMENT_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "wrd", "segments"]
VOCAB = LetterVocabulary()


@pytest.fixture(scope="module")
def root(mini_root):
    """The transfer stand-ins (generated once into the mini folder, reused)."""
    generate(mini_root, seed=0, size="mini", corpora=list(TRANSFER), log=lambda *a: None)
    return mini_root


def folder(root, key):
    return root / CORPORA[key][1]


def header(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def resolve(value, data_root):
    assert value.startswith("$data_root/"), value
    return Path(value.replace("$data_root", str(data_root)))


def check_segment_rows(rows, data_root):
    """Every row's segment lies in its file, ``duration`` is its length,
    ``segments`` names the same range, ``wrd`` is in the letter vocabulary
    and ``read_piece`` reads it."""
    ids = [r["ID"] for r in rows]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    for row in rows:
        wav = resolve(row["wav"], data_root)
        info = sf.info(str(wav))
        assert info.samplerate == SR and info.channels == 1
        start, stop = int(row["start"]), int(row["stop"])
        assert 0 <= start < stop <= info.frames
        assert float(row["duration"]) == pytest.approx((stop - start) / SR, abs=1e-7)
        assert row["segments"] == f"{row['wav']}:{start}:{stop}"
        VOCAB.encode(row["wrd"], utterance_id=row["ID"])
    first = rows[0]
    piece = read_piece(first["segments"], data_root)
    assert piece.shape[0] == int(first["stop"]) - int(first["start"])


def copy_corpus(root, key, tmp_path):
    target = tmp_path / CORPORA[key][1]
    shutil.copytree(folder(root, key), target)
    return target


def make_shorten(path):
    """Turn a .sph into what LDC ships for Switchboard: a shorten header."""
    fields = [("channel_count", 2), ("sample_count", 8000), ("sample_rate", 8000),
              ("sample_n_bytes", 1), ("sample_coding", "ulaw,embedded-shorten-v2.00")]
    Path(path).write_bytes(sphere_header(fields) + b"\x00shorten-data" * 100)


# ------------------------------------------------------------ registration
def test_registered_on_request_only(root):
    assert set(TRANSFER) <= set(CORPORA) and set(TRANSFER) == set(ON_REQUEST)
    assert not set(TRANSFER) & set(DEFAULT_CORPORA)
    for key in TRANSFER:
        info = json.loads((folder(root, key) / ".synthetic.json").read_text())
        assert 20 <= info["recordings"] <= 45 and info["hours"] < 0.1, (key, info)


def test_stand_ins_are_deterministic(tmp_path):
    """Same files for a seed whatever the worker count; Ogg files compared by
    their samples (libsndfile gives every Ogg stream a random serial number,
    so their bytes differ from build to build)."""
    for name, jobs in (("a", 1), ("b", 2)):
        generate(tmp_path / name, seed=3, size="tiny", corpora=list(TRANSFER), jobs=jobs,
                 log=lambda *a: None)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file() and p.name != ".synthetic.json")
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                           if p.is_file() and p.name != ".synthetic.json")
    assert {f.suffix for f in files} >= {".sph", ".stm", ".ogg", ".tsv", ".text", ".txt"}
    for rel in files:
        a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
        if rel.suffix == ".ogg":
            assert np.array_equal(sf.read(str(a), dtype="int16")[0],
                                  sf.read(str(b), dtype="int16")[0]), rel
        else:
            assert a.read_bytes() == b.read_bytes(), rel


def test_normalisation_fits_letter_vocabulary():
    texts = [letters_text("Co-operation & 50% of 2019's “quotes” – naïve façade, "
                          "Øresund!"),
             swbd_text("[vocalized-noise] th[e]- the [laughter-i_1] -[a]bout <e_aside>"),
             fisher_text("(( i guess )) [lipsmack] wh- what's up")]
    assert texts == ["CO OPERATION AND FIFTY PERCENT OF TWO THOUSAND NINETEEN'S QUOTES NAIVE "
                     "FACADE ORESUND", "TH THE I BOUT", "I GUESS WH WHAT'S UP"]
    for text in texts:
        VOCAB.encode(text, utterance_id="t")
    assert letters_text("日本") is None


# ------------------------------------------------------------ TED-LIUM 3
def stm_expectation(corpus, split, unk="drop_token"):
    """``{ID: (start, stop, wrd, talk)}`` from the stand-in's STM files,
    independently of the preparation."""
    out = {}
    for stm in sorted((corpus / "legacy" / split / "stm").glob("*.stm")):
        for line in stm.read_text().splitlines():
            talk, _, speaker, start, end, _label, text = line.split(None, 6)
            if text == "ignore_time_segment_in_scoring":
                continue
            tokens = text.split()
            if unk == "drop_utterance" and "<unk>" in tokens:
                continue
            words = []
            for token in tokens:
                if token == "<unk>":
                    continue
                if token.startswith("'"):
                    words[-1] += token
                else:
                    words.append(token)
            uid = f"{talk}-{round(float(start) * 100):07d}-{round(float(end) * 100):07d}"
            out[uid] = (round(float(start) * SR), round(float(end) * SR),
                        " ".join(words).upper(), speaker)
    return out


def test_tedlium3_rows(root, tmp_path):
    corpus = folder(root, "tedlium3")
    result = prepare_tedlium3(corpus, tmp_path, splits=["train", "dev", "test"], num_workers=1,
                              progress=False)
    for split in ("train", "dev", "test"):
        path = result.csv_files[split]
        assert Path(path).name == f"tedlium3-{split}.csv"
        assert header(path) == SEGMENT_COLUMNS
        rows = read_csv(path)
        expected = stm_expectation(corpus, split)
        assert {r["ID"] for r in rows} == set(expected) and len(rows) >= 4
        for row in rows:
            start, stop, wrd, speaker = expected[row["ID"]]
            assert (int(row["start"]), int(row["stop"])) == (start, stop)
            assert row["wrd"] == wrd and row["spk_id"] == speaker
            assert "<UNK>" not in row["wrd"] and "IGNORE" not in row["wrd"]
            assert row["wav"] == f"$data_root/legacy/{split}/sph/{speaker}.sph"
        check_segment_rows(rows, corpus)
    # the project's pre-training check reads the segments column
    assert len(verify_manifest(result.csv_files["dev"], corpus, progress=False).frames) == 1
    # one <unk> per talk, some split clitics: the rules did something
    assert any("'" in r["wrd"] for r in read_csv(result.csv_files["train"]))
    again = prepare_tedlium3(corpus, tmp_path, splits=["train", "dev", "test"], progress=False)
    assert again.reused == ["train", "dev", "test"] and not again.prepared
    dropped = prepare_tedlium3(corpus, tmp_path / "drop", splits=["train"], unk="drop_utterance",
                               num_workers=1, progress=False)
    rows = read_csv(dropped.csv_files["train"])
    assert {r["ID"] for r in rows} == set(stm_expectation(corpus, "train", "drop_utterance"))
    assert len(rows) < len(read_csv(result.csv_files["train"]))


def test_tedlium3_subset_is_deterministic_whole_talks(root, tmp_path):
    corpus = folder(root, "tedlium3")
    splits = ["train", "train-20s", "train-40s"]
    first = prepare_tedlium3(corpus, tmp_path / "a", splits=splits, num_workers=1, progress=False)
    second = prepare_tedlium3(corpus, tmp_path / "b", splits=list(reversed(splits)),
                              num_workers=1, progress=False)
    for split in splits[1:]:
        assert Path(first.csv_files[split]).read_text() == Path(second.csv_files[split]).read_text()
    full = read_csv(first.csv_files["train"])
    talk_seconds = defaultdict(float)
    for row in full:
        talk_seconds[row["spk_id"]] += float(row["duration"])
    talks = {}
    for split, target in (("train-20s", 20.0), ("train-40s", 40.0)):
        rows = read_csv(first.csv_files[split])
        talks[split] = {r["spk_id"] for r in rows}
        # whole talks: every segment of a chosen talk is in
        assert {r["ID"] for r in rows} == {r["ID"] for r in full if r["spk_id"] in talks[split]}
        total = sum(float(r["duration"]) for r in rows)
        assert total >= target and len(talks[split]) < len(talk_seconds)
        chosen, seconds = select_units(dict(talk_seconds), target)
        assert set(chosen) == talks[split] and seconds == pytest.approx(total)
        # the smallest prefix: without its last talk it would be short of the target
        assert seconds - talk_seconds[chosen[-1]] < target
    assert talks["train-20s"] <= talks["train-40s"]  # nested
    other = prepare_tedlium3(corpus, tmp_path / "c", splits=["train-40s"], subset_seed=1,
                             num_workers=1, progress=False)
    assert sum(float(r["duration"]) for r in read_csv(other.csv_files["train-40s"])) >= 40


def test_tedlium3_missing_folders(root, tmp_path):
    with pytest.raises(DataPreparationError) as err:
        prepare_tedlium3(tmp_path / "nothing", tmp_path / "out")
    assert "TEDLIUM_release-3 folder" in str(err.value)
    legacy = folder(root, "tedlium3") / "legacy"
    with pytest.raises(DataPreparationError) as err:
        prepare_tedlium3(legacy, tmp_path / "out", splits=["dev"])
    problem = err.value.problems[0]
    assert problem.path == str(legacy / "legacy" / "dev" / "sph") and problem.fatal
    assert f"pass its parent {legacy.parent}" in problem.what
    assert not (tmp_path / "out" / "tedlium3-dev.csv").exists()
    with pytest.raises(ValueError, match="unknown split"):
        prepare_tedlium3(legacy, tmp_path / "out", splits=["valid"])


def test_tedlium3_bad_files(root, tmp_path):
    corpus = copy_corpus(root, "tedlium3", tmp_path)
    sph = sorted((corpus / "legacy" / "train" / "sph").glob("*.sph"))
    make_shorten(sph[0])
    # cut 0.2 s before the end of its first segment: that one is cut at the end of the
    # file (within END_TOLERANCE_S), the later ones end after it
    first_end = float((corpus / "legacy" / "train" / "stm" / f"{sph[1].stem}.stm")
                      .read_text().split()[4])
    kept = round((first_end - 0.2) * SR)
    sph[1].write_bytes(sph[1].read_bytes()[:1024 + 2 * kept])
    save = tmp_path / "out"
    with pytest.raises(DataPreparationError) as err:
        prepare_tedlium3(corpus, save, splits=["train"], num_workers=1, progress=False)
    message = str(err.value)
    assert f"{sph[0]}: shorten-compressed NIST SPHERE" in message
    assert f"sph2pipe -f sph -p {sph[0]} {sph[0]}.pcm && mv {sph[0]}.pcm {sph[0]}" in message
    assert f"ends after its audio {sph[1]}" in message
    assert not (save / "tedlium3-train.csv").exists()
    result = prepare_tedlium3(corpus, save, splits=["train"], skip_bad_files=True,
                              num_workers=1, progress=False)
    rows = read_csv(result.csv_files["train"])
    talks = {r["spk_id"] for r in rows}
    assert sph[0].stem not in talks and len(talks) == len(sph) - 1
    cut = [r for r in rows if r["spk_id"] == sph[1].stem]
    assert len(cut) == 1 and int(cut[0]["stop"]) == kept
    assert float(cut[0]["duration"]) == pytest.approx((kept - int(cut[0]["start"])) / SR)


def test_tedlium3_cli(root, tmp_path, capsys):
    assert tedlium3.main(["--data_folder", str(folder(root, "tedlium3")), "--save_folder",
                          str(tmp_path), "--splits", "dev", "--num_workers", "1"]) == 0
    assert "dev: " in capsys.readouterr().out
    assert tedlium3.main(["--data_folder", str(tmp_path / "none"), "--save_folder",
                          str(tmp_path)]) == 2
    assert "data folder does not exist" in capsys.readouterr().err


# ------------------------------------------------------------ VoxPopuli
def tsv_rows(corpus, split):
    with open(corpus / "transcribed_data" / "en" / f"asr_{split}.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_voxpopuli_rows(root, tmp_path):
    corpus = folder(root, "voxpopuli_en")
    result = prepare_voxpopuli(corpus, tmp_path, splits=["train", "dev", "test"], num_workers=1,
                               progress=False)
    speakers = {}
    for split in ("train", "dev", "test"):
        path = result.csv_files[split]
        assert Path(path).name == f"voxpopuli-en-{split}.csv"
        assert header(path) == ["ID", "duration", "wav", "spk_id", "wrd"]
        rows = {r["ID"]: r for r in read_csv(path)}
        meta = tsv_rows(corpus, split)
        assert set(rows) == {m["id"] for m in meta}
        for m in meta:
            row = rows[m["id"]]
            wav = resolve(row["wav"], corpus)
            assert wav == corpus / "transcribed_data" / "en" / m["id"][:4] / f"{m['id']}.ogg"
            info = sf.info(str(wav))
            assert info.samplerate == SR and info.channels == 1
            assert float(row["duration"]) == pytest.approx(info.frames / SR, abs=1e-7)
            assert row["wrd"] == m["normalized_text"].upper().replace("-", " ")
            assert row["spk_id"] == m["speaker_id"]
            VOCAB.encode(row["wrd"], utterance_id=row["ID"])
        speakers[split] = {r["spk_id"] for r in rows.values()}
    assert not speakers["train"] & (speakers["dev"] | speakers["test"])
    subset = prepare_voxpopuli(corpus, tmp_path / "sub", splits=["train-40s"], num_workers=1,
                               progress=False)
    again = prepare_voxpopuli(corpus, tmp_path / "sub2", splits=["train-40s"], num_workers=1,
                              progress=False)
    text = Path(subset.csv_files["train-40s"]).read_text()
    assert text == Path(again.csv_files["train-40s"]).read_text()
    rows = read_csv(subset.csv_files["train-40s"])
    full = read_csv(result.csv_files["train"])
    chosen = {speech_of(r["ID"]) for r in rows}
    assert {r["ID"] for r in rows} == {r["ID"] for r in full if speech_of(r["ID"]) in chosen}
    assert 40 <= sum(float(r["duration"]) for r in rows) < sum(float(r["duration"]) for r in full)


def test_voxpopuli_bad_inputs(root, tmp_path):
    corpus = copy_corpus(root, "voxpopuli_en", tmp_path)
    meta = tsv_rows(corpus, "dev")
    missing = corpus / "transcribed_data" / "en" / meta[0]["id"][:4] / f"{meta[0]['id']}.ogg"
    missing.unlink()
    broken = corpus / "transcribed_data" / "en" / meta[1]["id"][:4] / f"{meta[1]['id']}.ogg"
    broken.write_bytes(b"OggS not really")
    with pytest.raises(DataPreparationError) as err:
        prepare_voxpopuli(corpus, tmp_path / "out", splits=["dev"], num_workers=1, progress=False)
    message = str(err.value)
    assert f"{missing}: listed in asr_dev.tsv line 2 but the audio file is missing" in message
    assert f"{broken}: unreadable audio" in message
    result = prepare_voxpopuli(corpus, tmp_path / "out", splits=["dev"], skip_bad_files=True,
                               num_workers=1, progress=False)
    assert len(read_csv(result.csv_files["dev"])) == len(meta) - 2
    with pytest.raises(DataPreparationError) as err:
        prepare_voxpopuli(corpus / "transcribed_data" / "en", tmp_path / "out2", splits=["dev"])
    assert f"pass {corpus}" in str(err.value)
    (corpus / "transcribed_data" / "en" / "asr_test.tsv").unlink()
    with pytest.raises(DataPreparationError, match="asr_test.tsv: split TSV does not exist"):
        prepare_voxpopuli(corpus, tmp_path / "out3", splits=["test"], skip_bad_files=True)


# ------------------------------------------------------------ Fisher + Switchboard
def transcript_expectation(corpus):
    """``{ID: (conversation, side, start, end, wrd)}`` of the stand-in's
    transcripts, read here without the preparation's parsers."""
    out = {}
    for path in sorted(corpus.glob("swb_ms98_transcriptions/*/*/*-trans.text")):
        for line in path.read_text().splitlines():
            uid, start, end, text = line.split(None, 3)
            conv, side = f"sw0{uid[2:6]}", uid[6]
            words = re.sub(r"\[laughter-(\w+)\]", r"\1", text)
            words = " ".join(w for w in words.split() if not w.startswith("["))
            if words:
                out[(conv, side, float(start), float(end))] = words.upper()
    for path in sorted(corpus.glob("fe_03_p1_tran/data/trans/*/*.txt")):
        for line in path.read_text().splitlines():
            if not line or line.startswith("#"):
                continue
            start, end, side, text = line.split(None, 3)
            words = " ".join(w for w in text.split() if not w.startswith(("[", "((", "))")))
            out[(path.stem, side.rstrip(":"), float(start), float(end))] = words.upper()
    return {f"{c}-{s}-{round(a * 100):07d}-{round(b * 100):07d}": (c, s, a, b, w)
            for (c, s, a, b), w in out.items()}


def test_fisher_swbd_rows_and_8khz_conversion(root, tmp_path):
    corpus = folder(root, "fisher_swbd")
    audio = tmp_path / "audio16k"
    result = prepare_fisher_swbd(corpus, tmp_path, splits=["train", "dev", "test"],
                                 audio_folder=audio, num_workers=1, progress=False)
    expected = transcript_expectation(corpus)
    conversations, seen = {}, set()
    for split in ("train", "dev", "test"):
        path = result.csv_files[split]
        assert Path(path).name == f"fisher_swbd-{split}.csv"
        assert header(path) == SEGMENT_COLUMNS
        rows = read_csv(path)
        check_segment_rows(rows, audio)
        for row in rows:
            conv, side, start, end, wrd = expected[row["ID"]]
            assert (int(row["start"]), int(row["stop"])) == (round(start * SR), round(end * SR))
            assert row["wrd"] == wrd and row["spk_id"] == f"{conv}-{side}"
            corpus_dir = "swbd" if conv.startswith("sw") else "fisher"
            assert row["wav"] == f"$data_root/{corpus_dir}/{conv}-{side}.flac"
        seen |= {r["ID"] for r in rows}
        conversations[split] = {r["ID"].split("-")[0] for r in rows}
        # both corpora in every split
        assert {c[:2] for c in conversations[split]} == {"sw", "fe"}, split
    assert seen == set(expected)
    assert not conversations["train"] & conversations["dev"]
    assert not conversations["dev"] & conversations["test"]
    assert len(conversations["dev"]) == len(conversations["test"]) == 2  # 1 per corpus
    # 8 kHz two-channel SPHERE -> one 16 kHz mono FLAC per side, twice the frames
    sph = corpus / "swb1_d1" / "data" / "sw02001.sph"
    raw = sf.info(str(sph))
    assert (raw.samplerate, raw.channels) == (8000, 2)
    stereo, _ = sf.read(str(sph), dtype="float32")
    for channel, side in enumerate("AB"):
        flac = audio / "swbd" / f"sw02001-{side}.flac"
        data, rate = sf.read(str(flac), dtype="float32")
        assert rate == SR and data.ndim == 1 and len(data) == 2 * raw.frames
        # the side's own channel, upsampled: every other sample is (nearly) the 8 kHz one
        assert np.corrcoef(data[::2], stereo[:, channel])[0, 1] > 0.95
    assert verify_manifest(result.csv_files["train"], audio, progress=False).frames
    with pytest.raises(ValueError, match="8000 Hz, expected 16000 Hz"):
        read_piece(f"{sph}:0:100")
    again = prepare_fisher_swbd(corpus, tmp_path, splits=["dev"], audio_folder=audio,
                                progress=False)
    assert again.reused == ["dev"]


def test_fisher_swbd_subset_converts_only_its_sides(root, tmp_path):
    corpus = folder(root, "fisher_swbd")
    manifests = []
    for name in ("a", "b"):
        result = prepare_fisher_swbd(corpus, tmp_path / name, splits=["train-30s"],
                                     num_workers=1, progress=False)
        manifests.append(Path(result.csv_files["train-30s"]))
    assert manifests[0].read_text() == manifests[1].read_text()
    rows = read_csv(manifests[0])
    sides = {r["spk_id"] for r in rows}
    flacs = sorted((tmp_path / "a" / fisher_swbd.AUDIO_FOLDER).rglob("*.flac"))
    assert {f.stem for f in flacs} == sides  # nothing else converted
    full = prepare_fisher_swbd(corpus, tmp_path / "full", splits=["train"], num_workers=1,
                               progress=False)
    train = read_csv(full.csv_files["train"])
    assert {r["ID"] for r in rows} == {r["ID"] for r in train if r["spk_id"] in sides}
    assert len(sides) < len({r["spk_id"] for r in train})
    # the 30 s are counted in transcript time (end - start of the kept lines)
    assert sum(float(r["duration"]) for r in rows) >= 30 - 0.01 * len(rows)


def test_fisher_swbd_bad_inputs(root, tmp_path):
    corpus = copy_corpus(root, "fisher_swbd", tmp_path)
    sph = corpus / "swb1_d1" / "data" / "sw02001.sph"
    make_shorten(sph)
    audio = tmp_path / "audio16k"
    with pytest.raises(DataPreparationError) as err:
        prepare_fisher_swbd(corpus, tmp_path / "out", splits=["train", "dev", "test"],
                            audio_folder=audio, num_workers=1, progress=False)
    assert f"{sph}: shorten-compressed NIST SPHERE" in str(err.value)
    assert f"sph2pipe -f sph -p {sph}" in str(err.value)
    assert not audio.exists()  # nothing converted while a problem is pending
    result = prepare_fisher_swbd(corpus, tmp_path / "out", splits=["train", "dev", "test"],
                                 audio_folder=audio, skip_bad_files=True, num_workers=1,
                                 progress=False)
    ids = [r["ID"] for s in ("train", "dev", "test") for r in read_csv(result.csv_files[s])]
    assert ids and not any(i.startswith("sw02001") for i in ids)
    assert not list(audio.rglob("sw02001-*"))
    # a transcript without audio, and a corpus asked for but absent
    (corpus / "fe_03_p1_sph1" / "audio" / "000" / "fe_03_00002.sph").unlink()
    with pytest.raises(DataPreparationError) as err:
        prepare_fisher_swbd(corpus, tmp_path / "out2", corpora=["fisher"], progress=False)
    assert "conversation fe_03_00002 has no audio file" in str(err.value)
    shutil.rmtree(corpus / "swb_ms98_transcriptions")
    with pytest.raises(DataPreparationError) as err:
        prepare_fisher_swbd(corpus, tmp_path / "out3", corpora=["swbd"], progress=False)
    problem = err.value.problems[0]
    assert problem.fatal and "no swbd transcripts found" in problem.what
    assert "swb_ms98_transcriptions/NN/NNNN/" in problem.what


# ------------------------------------------------------------ paper 003 Fig. 1 (below)
def test_length_distributions_from_mini_manifests(mini_root, root, tmp_path):
    from data_prep.fluent_speech import prepare_fluent_speech
    from data_prep.iemocap import prepare_iemocap
    from data_prep.librispeech import prepare_librispeech
    from data_prep.speech_commands import prepare_speech_commands
    from data_prep.timers_and_such import prepare_timers_and_such
    from data_prep.voxceleb import prepare_voxceleb

    generate(mini_root, seed=0, size="mini", log=lambda *a: None,
             corpora=["librispeech", "speech_commands", "timers_and_such", "iemocap",
                      "voxceleb1", "fluent_speech_commands"])
    common = {"num_workers": 1, "progress": False}
    kws = prepare_speech_commands(mini_root / "speech_commands_v0.02", tmp_path / "sc",
                                  num_classes=[12], **common).csv_files
    sf_task = prepare_timers_and_such(mini_root / "timers-and-such", tmp_path / "tas",
                                      **common).csv_files
    er = prepare_iemocap(mini_root / "IEMOCAP_full_release", tmp_path / "er", folds=[1],
                         **common).csv_files
    vox = prepare_voxceleb(mini_root / "VoxCeleb1", tmp_path / "vox", **common).csv_files
    asr = prepare_librispeech(mini_root / "LibriSpeech", tmp_path / "ls",
                              splits=["train-clean-100"], **common).csv_files
    ic = prepare_fluent_speech(mini_root / "fluent_speech_commands_dataset", tmp_path / "fsc",
                               **common).csv_files
    ted = prepare_tedlium3(folder(root, "tedlium3"), tmp_path / "ted", splits=["train"],
                           **common).csv_files
    manifests = {
        "KWS": [kws[f"kws12_{s}"] for s in ("train", "valid", "test")],
        "SF": list(sf_task.values()),
        "ER": [er[f"fold1_{s}"] for s in ("train", "valid", "test")],
        "SID": [vox[k] for k in ("iden_train", "iden_dev", "iden_test")],
        "ASV": [vox["veri_train"], vox["veri_test"]],
        "ASR": [asr["train-clean-100"]],
        "IC": list(ic.values()),
        "TL3": [ted["train"]],
    }
    out = tmp_path / "fig" / "length_distributions.png"
    args = [f"{task}={','.join(map(str, paths))}" for task, paths in manifests.items()]
    assert length_distributions.main(["--manifests", *args, "--out", str(out)]) == 0
    image = __import__("matplotlib.image", fromlist=["imread"]).imread(str(out))
    assert image.ndim == 3 and image.shape[1] > 600
    stats = json.loads(out.with_suffix(".json").read_text())
    assert list(stats) == ["KWS", "SF", "ER", "SID", "ASV", "ASR", "IC", "TL3"]
    for task, paths in manifests.items():
        durations = [float(r["duration"]) for p in paths for r in read_csv(p)]
        s = stats[task]
        assert s["count"] == len(durations)
        assert s["min_s"] <= s["mean_s"] <= s["max_s"]
        assert s["mean_s"] == pytest.approx(np.mean(durations), abs=1e-3)
    # the paper's order of lengths: keyword clips are the shortest, LibriSpeech the longest
    assert stats["KWS"]["mean_s"] < stats["ER"]["mean_s"] < stats["ASR"]["mean_s"]
    with pytest.raises(DataPreparationError, match="manifest not found"):
        length_distributions.read_durations([tmp_path / "none.csv"])
