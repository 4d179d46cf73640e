"""Synthetic IEMOCAP (emotion recognition) with emotions carried by prosody.

Layout (as the real corpus)::

    IEMOCAP_full_release/Session{1..5}/
        sentences/wav/<dialog>/<dialog>_<F|M><NNN>.wav
        dialog/EmoEvaluation/<dialog>.txt
        dialog/transcriptions/<dialog>.txt

Each session has one female and one male speaker. Dialogs are named
``Ses01F_impro01`` or ``Ses01M_script01_1`` (the letter says who wore the
markers); a turn ``Ses01F_impro01_M003`` is the male speaker's fourth turn.
EmoEvaluation files give each turn's time span within the dialog, its
category (``neu hap exc ang sad`` and a few ``fru``/``xxx``, which emotion
preparations discard) and valence/activation/dominance, followed by
evaluator lines. The emotion is spoken through pitch, pitch range, rate and
loudness relative to the speaker's own voice, with per-turn jitter.
"""
from collections import Counter

from .core import Recording, rng_for, summarise, write_text
from .ids import pick
from .text import GIVEN_NAMES, SentenceGenerator
from .voices import make_speakers

SESSIONS = 5
EMOTIONS = ("neu", "hap", "exc", "ang", "sad", "fru", "xxx")
# Overall label distribution (fru and xxx are rare).
EMOTION_WEIGHTS = {"neu": 0.28, "hap": 0.13, "exc": 0.14, "ang": 0.15, "sad": 0.16,
                   "fru": 0.07, "xxx": 0.07}
# Prosody relative to the speaker: (pitch shift, range scale, rate scale, dB).
PROSODY = {
    "neu": (0.0, 1.0, 1.0, 0.0),
    "hap": (8.0, 1.4, 1.08, 1.5),
    "exc": (12.0, 1.6, 1.15, 3.0),
    "ang": (5.0, 1.5, 1.15, 5.0),
    "sad": (-9.0, 0.5, 0.78, -5.0),
    "fru": (2.0, 1.2, 1.05, 2.5),
}
# Typical valence, activation, dominance (1..5) of each category.
VAD = {"neu": (2.5, 2.5, 2.5), "hap": (4.0, 3.0, 3.0), "exc": (4.0, 4.0, 3.5),
       "ang": (1.5, 4.0, 4.0), "sad": (1.5, 2.0, 2.0), "fru": (2.0, 3.5, 3.5),
       "xxx": (2.5, 3.0, 3.0)}
CATEGORY = {"neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger",
            "sad": "Sadness", "fru": "Frustration"}

# impro / script: dialogs of each kind per session; turns: turns per dialog.
SIZES = {
    "tiny": {"impro": 1, "script": 0, "turns": 2, "sessions": 2},
    "mini": {"impro": 2, "script": 2, "turns": 14, "sessions": SESSIONS},
}


def emotion_prosody(emotion, rng):
    """Recording prosody fields for ``emotion`` with small jitter.

    ``xxx`` (no evaluator agreement) mixes two categories.

    Returns
    -------
    dict
        ``pitch_shift`` (espeak pitch units), ``range_scale``,
        ``rate_scale`` (factors) and ``volume_db`` (dB).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> emotion_prosody("sad", rng)["pitch_shift"] < 0 < emotion_prosody("exc", rng)["pitch_shift"]
    True
    """
    if emotion == "xxx":
        a, b = (list(PROSODY)[i] for i in rng.permutation(len(PROSODY))[:2])
        pitch, prange, rate, db = ((x + y) / 2 for x, y in zip(PROSODY[a], PROSODY[b]))
    else:
        pitch, prange, rate, db = PROSODY[emotion]
    return {"pitch_shift": float(pitch + rng.normal(0, 3.0)),
            "range_scale": float(prange * rng.lognormal(0, 0.1)),
            "rate_scale": float(rate * rng.lognormal(0, 0.05)),
            "volume_db": float(db + rng.normal(0, 1.5))}


def _dialog_names(session, rng, size):
    """Dialog names of one session, e.g. ``Ses01F_impro01``."""
    names = []
    for k in range(size["impro"]):
        names.append(f"Ses{session:02d}{'FM'[int(rng.integers(2))]}_impro{k + 1:02d}")
    for k in range(size["script"]):
        part = int(rng.integers(1, 4))
        names.append(f"Ses{session:02d}{'FM'[int(rng.integers(2))]}_script{k + 1:02d}_{part}")
    return names


def _dialog_emotions(rng, turns):
    """Per-turn labels, tilted towards one dominant emotion per dialog."""
    labels = list(EMOTION_WEIGHTS)
    weights = dict(EMOTION_WEIGHTS)
    theme = labels[int(rng.choice(5, p=[0.2] * 5))]  # one of neu hap exc ang sad
    weights[theme] += 0.5
    p = [weights[e] / sum(weights.values()) for e in labels]
    return [labels[int(rng.choice(len(labels), p=p))] for _ in range(turns)]


def _sentence(gen):
    """A short conversational sentence, first letter capitalised."""
    words = gen.sentence(int(gen.rng.integers(3, 15))).lower().split()[:14]
    text = " ".join(w.capitalize() if w == "i" or w.split("'")[0] in GIVEN_NAMES else w
                    for w in words)
    return text[0].upper() + text[1:] + gen.rng.choice([".", ".", "?", "!"])


def _evaluation_block(turn, emotion, start, end, sex, rng):
    """Lines of one turn in an EmoEvaluation file (ends with a blank line)."""
    vad = [min(5.0, max(1.0, v + 0.5 * int(rng.integers(-1, 2)))) for v in VAD[emotion]]
    lines = [f"[{start:.4f} - {end:.4f}]\t{turn}\t{emotion}\t"
             f"[{vad[0]:.4f}, {vad[1]:.4f}, {vad[2]:.4f}]"]
    names = list(CATEGORY.values())
    for k, evaluator in enumerate(("C-E2", "C-E3", "C-E4", f"C-{sex}1")):
        if emotion == "xxx" or (k == 3 and rng.random() < 0.3):
            category = pick(rng, names)
        else:
            category = CATEGORY[emotion]
        lines.append(f"{evaluator}:\t{category};\t()")
    for evaluator in ("A-E1", "A-E2", f"A-{sex}1"):
        val, act, dom = (int(round(min(5, max(1, v + rng.normal(0, 0.5))))) for v in vad)
        lines.append(f"{evaluator}:\tval {val}; act {act}; dom  {dom};\t()")
    return lines + [""]


def build(root, seed, size, renderer):
    """Write ``IEMOCAP_full_release/`` into ``root`` (the corpus folder).

    ``size`` is a ``SIZES`` preset. Returns the ``summarise`` statistics
    plus the count of each emotion label."""
    recordings, dialogs, speaker_ids = [], {}, []
    for session in range(1, size["sessions"] + 1):
        rng = rng_for(seed, "iemocap", "session", session)
        female, male = make_speakers(rng, 2, prefix=f"Ses{session:02d}", sexes=["F", "M"],
                                     snr_db=(25.0, 40.0))
        voices = {"F": female, "M": male}
        for dialog in _dialog_names(session, rng, size):
            drng = rng_for(seed, "iemocap", "dialog", dialog)
            gen = SentenceGenerator(drng)
            emotions = _dialog_emotions(drng, size["turns"])
            sex = "FM"[int(drng.integers(2))]
            counts = Counter()
            turns = []
            for emotion in emotions:
                if drng.random() < 0.75:  # speakers mostly alternate
                    sex = "M" if sex == "F" else "F"
                turn = f"{dialog}_{sex}{counts[sex]:03d}"
                counts[sex] += 1
                spk = voices[sex]
                prosody = emotion_prosody(emotion, drng)
                # Keep the loudest turns below full scale.
                prosody["volume_db"] = min(prosody["volume_db"], -1.0 - spk.channel.level_db)
                recordings.append(Recording(
                    path=f"Session{session}/sentences/wav/{dialog}/{turn}.wav",
                    text=_sentence(gen), speaker=spk, max_seconds=12.0, **prosody))
                speaker_ids.append(f"Ses{session:02d}{sex}")
                turns.append((turn, emotion, sex, recordings[-1],
                              float(drng.uniform(0.1, 1.5))))
            dialogs[(session, dialog)] = (turns, float(drng.uniform(1.0, 8.0)))
    durations = renderer.render(recordings, root, seed)
    for (session, dialog), (turns, clock) in dialogs.items():
        erng = rng_for(seed, "iemocap", "evaluation", dialog)
        evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        transcript = []
        for turn, emotion, sex, rec, gap in turns:
            start, end = clock, clock + durations[rec.path]
            evaluation += _evaluation_block(turn, emotion, start, end, sex, erng)
            transcript.append(f"{turn} [{start:08.4f}-{end:08.4f}]: {rec.text}")
            clock = end + gap
        folder = root / f"Session{session}" / "dialog"
        write_text(folder / "EmoEvaluation" / f"{dialog}.txt", evaluation)
        write_text(folder / "transcriptions" / f"{dialog}.txt", transcript)
    stats = summarise(durations, speaker_ids)
    labels = Counter(turn[1] for turns, _ in dialogs.values() for turn in turns)
    stats["emotions"] = {e: labels.get(e, 0) for e in EMOTIONS}
    return stats
