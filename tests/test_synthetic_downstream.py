"""The synthetic downstream corpora (Speech Commands, Timers and Such,
IEMOCAP, VoxCeleb1, Fluent Speech Commands, Common Voice zh-CN): on-disk
layout, audio format, metadata consistency and determinism."""
import ast
import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.synthetic import CORPORA, corpus_module, generate
from data_prep.synthetic.core import MARKER
from data_prep.synthetic.text import number_to_words

DOWNSTREAM = ("speech_commands", "timers_and_such", "iemocap", "voxceleb1",
              "fluent_speech_commands", "common_voice_zh")


def corpus(mini_corpus, key):
    """(corpus folder, marker statistics) of ``key``."""
    root, stats = mini_corpus
    return root / CORPORA[key][1], stats[key]


def audio_seconds(path, samplerate=16000):
    """Duration of a mono 16 kHz file (asserting the format)."""
    info = sf.info(str(path))
    assert info.samplerate == samplerate, f"{path}: {info.samplerate} Hz"
    assert info.channels == 1, f"{path}: {info.channels} channels"
    return info.frames / info.samplerate


def check_stats(stats, files):
    """The marker's counts and hours agree with the files on disk."""
    seconds = [audio_seconds(f) for f in files]
    assert stats["recordings"] == len(files)
    assert stats["hours"] == pytest.approx(sum(seconds) / 3600, rel=0.02)
    return seconds


def read_csv(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    return rows[0], rows[1:]


# --------------------------------------------------------------- Speech Commands

SC_WORDS = sorted("""backward bed bird cat dog down eight five follow forward four go
happy house learn left marvin nine no off on one right seven sheila six stop three tree
two up visual wow yes zero""".split())
SC_NOISES = {"white_noise.wav", "pink_noise.wav", "doing_the_dishes.wav",
             "running_tap.wav", "exercise_bike.wav", "dude_miaowing.wav"}


def test_speech_commands_layout_and_audio(mini_corpus):
    sc, stats = corpus(mini_corpus, "speech_commands")
    folders = sorted(p.name for p in sc.iterdir() if p.is_dir())
    assert folders == sorted(SC_WORDS + ["_background_noise_"])
    assert len(SC_WORDS) == 35
    clips = sorted(p for w in SC_WORDS for p in (sc / w).iterdir())
    reps = defaultdict(list)
    for clip in clips:
        m = re.fullmatch(r"([0-9a-f]{8})_nohash_(\d+)\.wav", clip.name)
        assert m, f"bad clip name {clip}"
        reps[(clip.parent.name, m.group(1))].append(int(m.group(2)))
        wav, sr = sf.read(str(clip), dtype="float32")
        assert sr == 16000 and wav.ndim == 1 and len(wav) == 16000, clip
        assert np.abs(wav).max() > 0.05, f"{clip} is silent"
    # repetitions of a word by a speaker are numbered 0, 1, ...
    assert all(sorted(n) == list(range(len(n))) for n in reps.values())
    assert check_stats(stats, clips)
    # every word has clips from several speakers
    per_word = Counter(word for word, _ in reps)
    assert min(per_word[w] for w in SC_WORDS) >= 3
    assert stats["speakers"] == len({spk for _, spk in reps}) >= 20
    for noise in SC_NOISES:
        info = sf.info(str(sc / "_background_noise_" / noise))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 20 <= info.duration <= 60
    assert {p.name for p in (sc / "_background_noise_").iterdir()} == SC_NOISES
    for name in ("LICENSE", "README.md"):
        assert (sc / name).read_text().strip()


def test_speech_commands_split_by_speaker(mini_corpus):
    sc, stats = corpus(mini_corpus, "speech_commands")
    all_clips = {f"{p.parent.name}/{p.name}" for w in SC_WORDS for p in (sc / w).iterdir()}
    lists = {}
    for name in ("validation", "testing"):
        lines = (sc / f"{name}_list.txt").read_text().splitlines()
        assert len(lines) == len(set(lines)) > 0
        for line in lines:
            assert re.fullmatch(r"[a-z]+/[0-9a-f]{8}_nohash_\d+\.wav", line), line
            assert line in all_clips, f"{line} listed but missing"
        lists[name] = set(lines)
    lists["train"] = all_clips - lists["validation"] - lists["testing"]
    assert not lists["validation"] & lists["testing"]
    speakers = {k: {p.split("/")[1].split("_")[0] for p in v} for k, v in lists.items()}
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["testing"]
    assert not speakers["validation"] & speakers["testing"]
    for name in ("validation", "testing"):
        assert 0.04 <= len(lists[name]) / len(all_clips) <= 0.2, name
    assert stats["splits"] == {k: len(v) for k, v in lists.items()}


# ------------------------------------------------------------- Timers and Such

TAS_SPLITS = [f"{s}-{k}" for s in ("train", "dev", "test") for k in ("real", "synth")]
TAS_SLOTS = {"SetTimer": {"hours", "minutes", "seconds"},
             "SetAlarm": {"am_or_pm", "alarm_hour", "alarm_minute"},
             "SimpleMath": {"number1", "operator", "number2"},
             "UnitConversion": {"unit1", "unit2", "amount"}}


def _spoken_number(value):
    whole = number_to_words(int(value))
    if value != int(value):
        return f"{whole} point {number_to_words(round(value * 10) % 10)}"
    return whole


def test_timers_and_such_layout_and_semantics(mini_corpus):
    tas, stats = corpus(mini_corpus, "timers_and_such")
    assert sorted(p.name for p in tas.iterdir() if p.is_dir()) == sorted(TAS_SPLITS)
    listed, speakers, files = set(), {}, []
    for split in TAS_SPLITS:
        header, rows = read_csv(tas / f"{split}.csv")
        assert header == ["path", "speakerId", "transcription", "semantics"]
        assert rows, split
        intents = set()
        for path, spk, text, semantics in rows:
            assert path.startswith(f"{split}/") and path.endswith(".wav")
            assert (tas / path).is_file(), path
            assert path not in listed
            listed.add(path)
            assert text == text.lower() and re.fullmatch(r"[a-z' .]+", text), text
            sem = ast.literal_eval(semantics)
            assert set(sem) == {"intent", "slots"}
            intent, slots = sem["intent"], sem["slots"]
            intents.add(intent)
            assert TAS_SLOTS[intent] <= set(slots) <= TAS_SLOTS[intent] | {"name"}
            # the slots are what the transcription says
            if intent == "SetTimer":
                for unit in ("hours", "minutes", "seconds"):
                    if slots[unit]:
                        assert f"{number_to_words(slots[unit])} {unit[:-1]}" in text
                if "name" in slots:
                    assert f"{slots['name']} timer" in text
            elif intent == "SetAlarm":
                assert text.endswith(" ".join(slots["am_or_pm"].lower()))
                assert number_to_words(slots["alarm_hour"]) in text
            elif intent == "SimpleMath":
                expr = (f"{_spoken_number(slots['number1'])} {slots['operator']} "
                        f"{_spoken_number(slots['number2'])}")
                assert expr in text and isinstance(slots["number1"], float)
            else:
                assert slots["unit1"] != slots["unit2"] and slots["unit2"] in text
                assert _spoken_number(slots["amount"]) in text
        if split.startswith("train"):
            assert intents == set(TAS_SLOTS)
        speakers[split] = {row[1] for row in rows}
        files += [tas / row[0] for row in rows]
    on_disk = {str(p.relative_to(tas)) for p in tas.rglob("*.wav")}
    assert on_disk == listed
    for kind in ("real", "synth"):
        parts = [speakers[f"{s}-{kind}"] for s in ("train", "dev", "test")]
        assert sum(len(p) for p in parts) == len(set.union(*parts)), kind
    real = set.union(*(speakers[s] for s in TAS_SPLITS if s.endswith("real")))
    synth = set.union(*(speakers[s] for s in TAS_SPLITS if s.endswith("synth")))
    assert not real & synth
    seconds = check_stats(stats, sorted(files))
    assert 0.5 < min(seconds) and max(seconds) < 10


def test_timers_and_such_channels(mini_corpus):
    """synth splits are clean (digital silence before speech); real ones are
    heard through noisy channels."""
    tas, _ = corpus(mini_corpus, "timers_and_such")
    for split in TAS_SPLITS:
        silent = 0
        wavs = sorted((tas / split).glob("*.wav"))
        for wav in wavs:
            head = sf.read(str(wav), frames=400, dtype="int16")[0]
            silent += int(np.all(head == 0))
        if split.endswith("synth"):
            assert silent == len(wavs), split
        else:
            assert silent == 0, split


# ---------------------------------------------------------------------- IEMOCAP

IEMO_BLOCK = re.compile(r"\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(\S+)\t([a-z]{3})\t"
                        r"\[(\d\.\d{4}), (\d\.\d{4}), (\d\.\d{4})\]")
IEMO_TRANS = re.compile(r"(\S+) \[(\d{3}\.\d{4})-(\d{3}\.\d{4})\]: (.+)")


def read_iemocap(root):
    """{turn: (session, dialog, start, end, emotion, text)} from the label
    and transcription files, checking their format on the way."""
    turns = {}
    for session in range(1, 6):
        folder = root / f"Session{session}" / "dialog"
        for evaluation in sorted((folder / "EmoEvaluation").glob("*.txt")):
            dialog = evaluation.stem
            assert re.fullmatch(rf"Ses0{session}[FM]_(impro0\d|script0\d_\d)", dialog)
            lines = evaluation.read_text().splitlines()
            assert lines[0] == "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
            assert lines[1] == ""
            previous_end, counts = 0.0, Counter()
            for k, line in enumerate(lines[2:], start=2):
                m = IEMO_BLOCK.fullmatch(line)
                if not m:
                    continue
                assert lines[k - 1] == "", "a turn block starts after a blank line"
                assert re.fullmatch(r"C-E\d:\t[A-Za-z]+;\t\(\)", lines[k + 1])
                start, end = float(m.group(1)), float(m.group(2))
                turn, emotion = m.group(3), m.group(4)
                assert start >= previous_end and end > start
                previous_end = end
                sex = turn[-4]
                assert turn == f"{dialog}_{sex}{counts[sex]:03d}"
                counts[sex] += 1
                turns[turn] = [session, dialog, start, end, emotion, None]
            assert counts, f"no turns in {evaluation}"
            for line in (folder / "transcriptions" / f"{dialog}.txt").read_text().splitlines():
                m = IEMO_TRANS.fullmatch(line)
                assert m, line
                turn = m.group(1)
                assert turns[turn][2:4] == pytest.approx([float(m.group(2)),
                                                           float(m.group(3))], abs=1e-4)
                turns[turn][5] = m.group(4)
    assert all(t[5] for t in turns.values()), "every turn has a transcription"
    return turns


def test_iemocap_layout_labels_and_audio(mini_corpus):
    root, stats = corpus(mini_corpus, "iemocap")
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == \
        [f"Session{i}" for i in range(1, 6)]
    turns = read_iemocap(root)
    wavs = sorted(root.glob("Session*/sentences/wav/*/*.wav"))
    assert {w.stem for w in wavs} == set(turns)
    for wav in wavs:
        session, dialog, start, end, _, _ = turns[wav.stem]
        assert wav.parent.name == dialog
        assert wav.parts[-5] == f"Session{session}"
        assert audio_seconds(wav) == pytest.approx(end - start, abs=2e-4)
    check_stats(stats, wavs)
    labels = Counter(t[4] for t in turns.values())
    assert set(labels) <= {"neu", "hap", "exc", "ang", "sad", "fru", "xxx"}
    assert all(labels[e] >= 10 for e in ("neu", "hap", "exc", "ang", "sad"))
    assert labels["fru"] > 0 and labels["xxx"] > 0
    assert labels["fru"] + labels["xxx"] < 0.25 * len(turns)
    assert stats["emotions"] == {e: labels.get(e, 0) for e in stats["emotions"]}
    # both speakers of every session speak
    sexes = {(t[0], turn[-4]) for turn, t in turns.items()}
    assert sexes == {(s, x) for s in range(1, 6) for x in "FM"}


def test_iemocap_emotion_is_in_the_prosody(mini_corpus):
    """Angry turns are louder and faster than sad ones; the difference is
    large on average but individual turns overlap."""
    root, _ = corpus(mini_corpus, "iemocap")
    turns = read_iemocap(root)
    level, pace = defaultdict(list), defaultdict(list)
    for wav in root.glob("Session*/sentences/wav/*/*.wav"):
        _, _, start, end, emotion, text = turns[wav.stem]
        audio, _ = sf.read(str(wav), dtype="float32")
        level[emotion].append(20 * np.log10(np.abs(audio).max()))
        pace[emotion].append((end - start) / len(text.split()))
    mean = {e: (np.mean(level[e]), np.mean(pace[e])) for e in ("ang", "sad", "neu", "exc")}
    assert mean["ang"][0] - mean["sad"][0] > 4.0
    assert mean["sad"][1] > 1.15 * mean["ang"][1]
    assert mean["sad"][1] > mean["neu"][1] > mean["exc"][1]
    # not a constant fingerprint: the loudness ranges overlap
    assert min(level["ang"]) < max(level["sad"])


# -------------------------------------------------------------------- VoxCeleb1

VOX_ALPHABET = re.compile(r"[A-Za-z0-9_-]{11}")


def test_voxceleb_layout_and_identification_split(mini_corpus):
    vox, stats = corpus(mini_corpus, "voxceleb1")
    wavs = sorted((vox / "wav").rglob("*.wav"))
    utts = defaultdict(list)
    for wav in wavs:
        spk, video, name = wav.relative_to(vox / "wav").parts
        assert re.fullmatch(r"id1\d{4}", spk) and VOX_ALPHABET.fullmatch(video), wav
        assert re.fullmatch(r"\d{5}\.wav", name), wav
        utts[spk].append(int(name[:5]))
    speakers = sorted(utts)
    assert speakers == [f"id{10001 + i}" for i in range(len(speakers))]
    assert all(sorted(n) == list(range(1, len(n) + 1)) for n in utts.values())
    seconds = check_stats(stats, wavs)
    assert min(seconds) >= 3.5 and max(seconds) <= 9.5
    split_of, video_split = {}, defaultdict(set)
    for line in (vox / "iden_split.txt").read_text().splitlines():
        label, path = line.split(" ")
        assert label in ("1", "2", "3") and path not in split_of
        split_of[path] = label
        video_split[tuple(path.split("/")[:2])].add(label)
    assert set(split_of) == {str(w.relative_to(vox / "wav")) for w in wavs}
    assert all(len(labels) == 1 for labels in video_split.values()), "split by video"
    for spk in speakers:
        labels = set().union(*(v for (s, _), v in video_split.items() if s == spk))
        assert labels == {"1", "2", "3"}, spk


def test_voxceleb_verification_trials_and_meta(mini_corpus):
    vox, stats = corpus(mini_corpus, "voxceleb1")
    header, rows = read_csv(vox / "vox1_meta.csv", delimiter="\t")
    assert header == ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]
    speakers = sorted(p.name for p in (vox / "wav").iterdir())
    assert [r[0] for r in rows] == speakers
    assert all(r[2] in ("m", "f") and r[4] in ("dev", "test") for r in rows)
    test_speakers = {r[0] for r in rows if r[4] == "test"}
    # the held-out verification speakers are the last ~25 %
    assert test_speakers == set(speakers[-len(test_speakers):])
    assert 0.15 <= len(test_speakers) / len(speakers) <= 0.35
    labels, used, pairs = Counter(), set(), set()
    for line in (vox / "veri_test2.txt").read_text().splitlines():
        label, enrol, test = line.split(" ")
        assert enrol != test and (vox / "wav" / enrol).is_file() and (vox / "wav" / test).is_file()
        same = enrol.split("/")[0] == test.split("/")[0]
        assert label == ("1" if same else "0"), line
        if same:
            assert enrol.split("/")[1] != test.split("/")[1], "target trials cross videos"
        assert frozenset((enrol, test)) not in pairs
        pairs.add(frozenset((enrol, test)))
        labels[label] += 1
        used |= {enrol.split("/")[0], test.split("/")[0]}
    assert used == test_speakers
    assert 0.3 <= labels["1"] / sum(labels.values()) <= 0.7
    assert stats["trials"] == {"target": labels["1"], "nontarget": labels["0"]}


# ------------------------------------------------------- Fluent Speech Commands

FSC_ACTIONS = {"activate", "deactivate", "increase", "decrease", "change language", "bring"}
FSC_OBJECTS = {"music", "lights", "volume", "heat", "lamp", "newspaper", "juice", "socks",
               "shoes", "Chinese", "Korean", "English", "German", "none"}
FSC_LOCATIONS = {"kitchen", "bedroom", "washroom", "none"}


def test_fluent_speech_layout_and_labels(mini_corpus):
    fsc, stats = corpus(mini_corpus, "fluent_speech_commands")
    listed, speakers, intents, files = set(), {}, {}, []
    for split in ("train", "valid", "test"):
        header, rows = read_csv(fsc / "data" / f"{split}_data.csv")
        assert header == ["", "path", "speakerId", "transcription", "action", "object",
                          "location"]
        assert [int(r[0]) for r in rows] == list(range(len(rows)))
        for _, path, spk, text, action, obj, loc in rows:
            m = re.fullmatch(r"wavs/speakers/([A-Za-z0-9]{16})/"
                             r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.wav",
                             path)
            assert m and m.group(1) == spk, path
            assert (fsc / path).is_file() and path not in listed
            listed.add(path)
            assert action in FSC_ACTIONS and obj in FSC_OBJECTS and loc in FSC_LOCATIONS
            if loc != "none":
                assert loc in text.lower()
            if obj in ("Chinese", "Korean", "English", "German", "newspaper", "juice",
                       "socks", "shoes", "lamp"):
                assert obj.lower() in text.lower(), (text, obj)
        speakers[split] = {r[2] for r in rows}
        intents[split] = {tuple(r[4:]) for r in rows}
        files += [fsc / r[1] for r in rows]
    assert listed == {str(p.relative_to(fsc)) for p in (fsc / "wavs").rglob("*.wav")}
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    assert len(intents["train"]) == 31
    assert intents["valid"] <= intents["train"] and intents["test"] <= intents["train"]
    seconds = check_stats(stats, sorted(files))
    assert 0.3 < min(seconds) and max(seconds) < 6


# --------------------------------------------------------- Common Voice zh-CN

CV_HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender",
             "accents", "locale", "segment"]


def test_common_voice_layout_and_tsvs(mini_corpus):
    cv, stats = corpus(mini_corpus, "common_voice_zh")
    clips = sorted((cv / "clips").iterdir())
    assert all(re.fullmatch(r"common_voice_zh-CN_\d+\.mp3", c.name) for c in clips)
    splits = {}
    for split in ("train", "dev", "test", "validated"):
        header, rows = read_csv(cv / f"{split}.tsv", delimiter="\t")
        assert header == CV_HEADER and rows, split
        assert all(len(r) == len(CV_HEADER) for r in rows)
        splits[split] = rows
    assert sorted(map(tuple, splits["validated"])) == sorted(
        tuple(r) for s in ("train", "dev", "test") for r in splits[s])
    assert sorted(r[1] for r in splits["validated"]) == [c.name for c in clips]
    speakers = {s: {r[0] for r in splits[s]} for s in ("train", "dev", "test")}
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    chars = set()
    for client_id, path, sentence, up, down, age, gender, _, locale, _ in splits["validated"]:
        assert re.fullmatch(r"[0-9a-f]{128}", client_id)
        assert locale == "zh-CN" and gender in ("male", "female", "")
        assert int(up) > int(down) >= 0
        hanzi = re.sub(r"[。！？，]", "", sentence)
        assert re.fullmatch(r"[\u4e00-\u9fff]{6,20}", hanzi), sentence
        chars |= set(hanzi)
    assert len(chars) >= 100
    seconds = check_stats(stats, clips)
    # espeak's Mandarin voice reads about 3-5 syllables a second
    rate = {r[1]: len(re.sub(r"[。！？，]", "", r[2])) for r in splits["validated"]}
    for clip, sec in zip(clips, seconds):
        assert 0.12 < sec / rate[clip.name] < 0.6, (clip.name, sec)


# -------------------------------------------------------------------- determinism

@pytest.mark.parametrize("key", DOWNSTREAM)
def test_presets_survive_the_marker(key):
    """A preset equals its JSON copy in the marker, so a finished corpus is
    recognised as up to date instead of being rebuilt."""
    sizes = corpus_module(key).SIZES
    assert set(sizes) == {"tiny", "mini"}
    for preset in sizes.values():
        assert json.loads(json.dumps(preset)) == preset


def _hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER}


@pytest.mark.parametrize("key", DOWNSTREAM)
def test_downstream_generation_is_deterministic(tmp_path, key):
    """Same seed => byte-identical files, whatever the number of workers."""
    folder = CORPORA[key][1]
    one = generate(tmp_path / "a", seed=0, size="tiny", corpora=[key], jobs=1,
                   log=lambda *a: None)
    two = generate(tmp_path / "b", seed=0, size="tiny", corpora=[key], jobs=2,
                   log=lambda *a: None)
    first, second = _hashes(tmp_path / "a" / folder), _hashes(tmp_path / "b" / folder)
    assert first == second
    assert one[key]["recordings"] > 0
    assert sum(Path(p).suffix in (".wav", ".mp3") for p in first) >= one[key]["recordings"]
    drop = ("build_seconds",)
    assert {k: v for k, v in one[key].items() if k not in drop} == \
        {k: v for k, v in two[key].items() if k not in drop}
