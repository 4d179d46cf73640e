"""Synthetic Fluent Speech Commands (intent classification).

Layout (as the real corpus)::

    fluent_speech_commands_dataset/
        wavs/speakers/<16-character speakerId>/<uuid-like id>.wav
        data/{train,valid,test}_data.csv
            ,path,speakerId,transcription,action,object,location

The first CSV column is the row index. The 31 intents (action, object,
location) are those of the real dataset, each with several phrasings.
Speakers are disjoint across the three splits and every intent occurs in
the training split (when it has at least 31 recordings).
"""
from dataclasses import replace

from .core import Recording, rng_for, summarise, write_text
from .ids import (ALNUM, csv_lines, pick, random_string, split_counts, unique_values,
                  uuid_like)
from .voices import make_speakers

LOCATIONS = ("kitchen", "bedroom", "washroom")
LANGUAGES = ("Chinese", "Korean", "English", "German")


def _with_locations(action, obj, phrases):
    """One intent per location; ``{loc}`` in a phrase names the room."""
    return {(action, obj, loc): [p.format(loc=loc, Loc=loc.capitalize()) for p in phrases]
            for loc in LOCATIONS}


# (action, object, location) -> phrasings.
PHRASES = {
    ("change language", "none", "none"): [
        "Change language", "Switch language", "Language settings",
        "Change the language", "Use a different language"],
    ("activate", "music", "none"): [
        "Play music", "Put on some music", "Start the music", "Turn on the music",
        "Music on", "Play some music"],
    ("deactivate", "music", "none"): [
        "Stop the music", "Pause music", "Turn off the music", "Music off",
        "Stop playing music"],
    ("activate", "lights", "none"): [
        "Turn on the lights", "Switch on the lights", "Lights on", "Turn the lights on"],
    ("deactivate", "lights", "none"): [
        "Turn off the lights", "Switch off the lights", "Lights off",
        "Turn the lights off"],
    ("activate", "lamp", "none"): [
        "Turn on the lamp", "Switch on the lamp", "Lamp on", "Turn the lamp on"],
    ("deactivate", "lamp", "none"): [
        "Turn off the lamp", "Switch off the lamp", "Lamp off", "Turn the lamp off"],
    ("increase", "volume", "none"): [
        "Turn up the volume", "Increase the volume", "Louder please", "Volume up",
        "Make it louder", "I can't hear that"],
    ("decrease", "volume", "none"): [
        "Turn down the volume", "Decrease the volume", "Volume down", "Make it quieter",
        "Too loud", "Quieter please"],
    ("increase", "heat", "none"): [
        "Turn up the heat", "Increase the heating", "Make it warmer", "Heat up",
        "I'm cold", "Increase the temperature"],
    ("decrease", "heat", "none"): [
        "Turn down the heat", "Decrease the heating", "Make it cooler", "Heat down",
        "It's too hot", "Decrease the temperature"],
    ("bring", "newspaper", "none"): [
        "Bring me the newspaper", "Get me the newspaper", "Fetch the newspaper",
        "Go get the newspaper"],
    ("bring", "juice", "none"): [
        "Bring me some juice", "Get me some juice", "Fetch me a juice", "Bring me juice"],
    ("bring", "socks", "none"): [
        "Bring me my socks", "Get me my socks", "Fetch my socks", "Go get my socks"],
    ("bring", "shoes", "none"): [
        "Bring me my shoes", "Get me my shoes", "Fetch my shoes", "Go get my shoes"],
    **_with_locations("activate", "lights", [
        "Turn on the lights in the {loc}", "Switch on the {loc} lights",
        "{Loc} lights on", "Lights on in the {loc}", "Turn the {loc} lights on"]),
    **_with_locations("deactivate", "lights", [
        "Turn off the lights in the {loc}", "Switch off the {loc} lights",
        "{Loc} lights off", "Lights off in the {loc}", "Turn the {loc} lights off"]),
    **_with_locations("increase", "heat", [
        "Turn up the heat in the {loc}", "Increase the temperature in the {loc}",
        "{Loc} heat up", "Make the {loc} warmer", "Heat up the {loc}"]),
    **_with_locations("decrease", "heat", [
        "Turn down the heat in the {loc}", "Decrease the temperature in the {loc}",
        "{Loc} heat down", "Make the {loc} cooler", "Cool down the {loc}"]),
    **{("change language", lang, "none"): [
        f"Switch the language to {lang}", f"Change language to {lang}",
        f"Set my device to {lang}", f"I want to use {lang}", f"{lang} please",
        f"Set the language to {lang}"] for lang in LANGUAGES},
}
INTENTS = sorted(PHRASES)
SPLITS = ("train", "valid", "test")

# speakers: total (split ~70/15/15 by speaker); utts: recordings per speaker.
SIZES = {
    "tiny": {"speakers": 3, "utts": 2},
    "mini": {"speakers": 20, "utts": 26},
}


def build(root, seed, size, renderer):
    """Write ``fluent_speech_commands_dataset/`` into ``root`` (the corpus
    folder). ``size`` is a ``SIZES`` preset. Returns the ``summarise``
    statistics plus the number of recordings of each split."""
    rng = rng_for(seed, "fluent_speech", "speakers")
    speakers = make_speakers(rng, size["speakers"], snr_db=(12.0, 35.0))
    ids = unique_values(rng, len(speakers), lambda r: random_string(r, 16, ALNUM))
    speakers = [replace(s, speaker_id=i) for s, i in zip(speakers, ids)]
    counts = split_counts(len(speakers), (0.7, 0.15, 0.15))
    rows = {split: [] for split in SPLITS}
    recordings, taken = [], set()
    start = 0
    for split, count in zip(SPLITS, counts):
        # Intents are dealt round-robin over the split from a shuffled order,
        # so the training split covers all 31 intents when it is big enough.
        srng = rng_for(seed, "fluent_speech", "split", split)
        order = [INTENTS[i] for i in srng.permutation(len(INTENTS))]
        k = 0
        for spk in speakers[start:start + count]:
            for _ in range(size["utts"]):
                intent = order[k % len(order)]
                k += 1
                text = pick(srng, PHRASES[intent])
                uid = unique_values(srng, 1, uuid_like, taken)[0]
                path = f"wavs/speakers/{spk.speaker_id}/{uid}.wav"
                recordings.append(Recording(path=path, text=text, speaker=spk))
                rows[split].append([path, spk.speaker_id, text, *intent])
        start += count
    durations = renderer.render(recordings, root, seed)
    header = ["", "path", "speakerId", "transcription", "action", "object", "location"]
    for split in SPLITS:
        write_text(root / "data" / f"{split}_data.csv",
                   csv_lines([header] + [[i, *row] for i, row in enumerate(rows[split])]))
    stats = summarise(durations, [r.speaker.speaker_id for r in recordings])
    stats["splits"] = {split: len(r) for split, r in rows.items()}
    return stats
