"""Synthetic VoxCeleb1 (speaker identification and verification).

Layout (as the real corpus)::

    VoxCeleb1/
        wav/idXXXXX/<11-character video id>/NNNNN.wav
        iden_split.txt     "1 id10001/VIDEO/00001.wav" (1 train, 2 dev, 3 test)
        veri_test2.txt     "1 id10270/VID/00001.wav id10270/VID2/00003.wav"
        vox1_meta.csv      VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set

Each video of a speaker has its own channel, so a speaker is more than a
channel fingerprint. The identification split is by video: every speaker's
last video is test, the one before dev, the rest train. The verification
speakers (``Set`` = test) are the last ~25 % of speakers; their trials pair
files of the same speaker from different videos (label 1) or of two
speakers (label 0), about half each.
"""
from dataclasses import replace

from .core import Recording, rng_for, summarise, write_text
from .ids import pick, random_string, unique_values
from .text import GIVEN_NAMES, SURNAMES, SentenceGenerator
from .voices import make_speakers, random_channel, with_channel

VIDEO_ALPHABET = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789_-")
NATIONALITIES = ("USA", "UK", "Canada", "Australia", "Ireland", "India", "Germany",
                 "France", "Italy", "Spain", "Mexico", "New Zealand", "Norway")
FIRST_ID = 10001

# speakers: total; videos: (min, max) per speaker (>= 3 for the split);
# utts: (min, max) per video; seconds: (min, max) target length;
# test_fraction: share of speakers held out for verification;
# trials: target and non-target trials per enrolment file.
# Ranges are lists, not tuples: a preset must equal its JSON copy in the
# corpus marker, or a finished corpus would be rebuilt on every run.
SIZES = {
    "tiny": {"speakers": 4, "videos": [3, 3], "utts": [1, 1], "seconds": [2.0, 3.0],
             "test_fraction": 0.5, "trials": 1},
    "mini": {"speakers": 24, "videos": [3, 4], "utts": [1, 3], "seconds": [4.0, 8.0],
             "test_fraction": 0.25, "trials": 3},
}


def _plan(seed, size):
    """Speakers and their recordings, grouped ``{speaker: {video: [paths]}}``."""
    rng = rng_for(seed, "voxceleb", "speakers")
    speakers = make_speakers(rng, size["speakers"])
    speakers = [replace(s, speaker_id=f"id{FIRST_ID + i}") for i, s in enumerate(speakers)]
    taken, recordings, files = set(), [], {}
    for spk in speakers:
        srng = rng_for(seed, "voxceleb", "videos", spk.speaker_id)
        gen = SentenceGenerator(srng)
        n_videos = int(srng.integers(size["videos"][0], size["videos"][1] + 1))
        videos = unique_values(srng, n_videos,
                                lambda r: random_string(r, 11, VIDEO_ALPHABET), taken)
        files[spk.speaker_id] = {}
        utt = 0
        for video in videos:
            heard = with_channel(spk, random_channel(srng, snr_db=(10.0, 30.0)))
            files[spk.speaker_id][video] = []
            for _ in range(int(srng.integers(size["utts"][0], size["utts"][1] + 1))):
                utt += 1
                seconds = srng.uniform(*size["seconds"])
                path = f"wav/{spk.speaker_id}/{video}/{utt:05d}.wav"
                recordings.append(Recording(
                    path=path, text=gen.sentence(max(2, int(seconds * spk.rate / 60))).lower(),
                    speaker=heard, max_seconds=size["seconds"][1] + 0.5))
                files[spk.speaker_id][video].append(path[len("wav/"):])
    return speakers, recordings, files


def _iden_split(files):
    """``iden_split.txt`` lines: last video test (3), the one before dev (2)."""
    lines = []
    for spk in sorted(files):
        videos = list(files[spk])
        for k, video in enumerate(videos):
            label = 3 if k == len(videos) - 1 else 2 if k == len(videos) - 2 else 1
            lines += [f"{label} {path}" for path in files[spk][video]]
    return lines


def _trials(seed, files, test_speakers, per_file):
    """Verification trials ``(label, enrol, test)`` over the test speakers.

    For each enrolment file: up to ``per_file`` target trials against the
    same speaker's files from other videos and as many non-target trials."""
    rng = rng_for(seed, "voxceleb", "trials")
    all_files = [(spk, video, path) for spk in test_speakers
                 for video in files[spk] for path in files[spk][video]]
    trials, seen = [], set()
    for spk, video, enrol in all_files:
        same = [p for s, v, p in all_files if s == spk and v != video]
        other = [p for s, v, p in all_files if s != spk]
        for label, pool in ((1, same), (0, other)):
            picks = [pool[i] for i in rng.permutation(len(pool))]
            added = 0
            for test in picks:
                if added == per_file:
                    break
                key = frozenset((enrol, test))
                if key not in seen:
                    seen.add(key)
                    trials.append((label, enrol, test))
                    added += 1
    return trials


def build(root, seed, size, renderer):
    """Write ``VoxCeleb1/`` into ``root`` (the corpus folder).

    ``size`` is a ``SIZES`` preset. Returns the ``summarise`` statistics
    plus counts of verification speakers and trials."""
    speakers, recordings, files = _plan(seed, size)
    durations = renderer.render(recordings, root, seed)
    n_test = max(2, int(round(len(speakers) * size["test_fraction"])))
    test_speakers = [s.speaker_id for s in speakers[-n_test:]]
    write_text(root / "iden_split.txt", _iden_split(files))
    trials = _trials(seed, files, test_speakers, size["trials"])
    write_text(root / "veri_test2.txt", [f"{label} {a} {b}" for label, a, b in trials])
    mrng = rng_for(seed, "voxceleb", "meta")
    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    taken = set()
    for spk in speakers:
        # GIVEN_NAMES alternates male and female names.
        given = GIVEN_NAMES[0::2] if spk.sex == "M" else GIVEN_NAMES[1::2]
        name = unique_values(mrng, 1, lambda r: "{}_{}".format(
            pick(r, given).capitalize(), pick(r, SURNAMES).capitalize()), taken)[0]
        nationality = pick(mrng, NATIONALITIES)
        subset = "test" if spk.speaker_id in test_speakers else "dev"
        meta.append(f"{spk.speaker_id}\t{name}\t{spk.sex.lower()}\t{nationality}\t{subset}")
    write_text(root / "vox1_meta.csv", meta)
    stats = summarise(durations, [r.speaker.speaker_id for r in recordings])
    stats["verification_speakers"] = len(test_speakers)
    stats["trials"] = {"target": sum(t[0] for t in trials),
                       "nontarget": sum(1 - t[0] for t in trials)}
    return stats
