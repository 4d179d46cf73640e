"""Synthetic Timers and Such (spoken-language understanding of commands).

Layout (as the real corpus)::

    timers-and-such/
        {train,dev,test}-{real,synth}/<speakerId>_prompt-<k>.wav
        {train,dev,test}-{real,synth}.csv    path,speakerId,transcription,semantics

``path`` is relative to the corpus folder. Four intents: ``SetTimer``,
``SetAlarm``, ``SimpleMath`` and ``UnitConversion``; ``semantics`` is the
Python ``repr`` of a dict such as
``{'intent': 'SimpleMath', 'slots': {'number1': 3.0, 'operator': 'plus', 'number2': 5.0}}``.
"real" splits have speakers with varied, noisy channels, disjoint across
train/dev/test; "synth" splits have other voices heard through clean
channels (like the real corpus's TTS part).
"""
from dataclasses import replace

from .core import Recording, rng_for, summarise, write_text
from .ids import csv_lines, hex_string, pick, unique_values, uuid_like
from .text import number_to_words
from .voices import make_speakers

SPLITS = ("train", "dev", "test")
INTENTS = ("SetTimer", "SetAlarm", "SimpleMath", "UnitConversion")

# real_speakers / synth_speakers: speakers per split; *_utts: prompts each
# speaker records.
SIZES = {
    "tiny": {"real_speakers": {"train": 1, "dev": 1, "test": 1}, "real_utts": 2,
             "synth_speakers": {"train": 1, "dev": 1, "test": 1}, "synth_utts": 1},
    "mini": {"real_speakers": {"train": 10, "dev": 3, "test": 3}, "real_utts": 16,
             "synth_speakers": {"train": 8, "dev": 2, "test": 2}, "synth_utts": 20},
}

TIMER_NAMES = ("pasta egg laundry pizza tea oven rice bread workout nap cookie "
               "coffee study meeting parking homework").split()
OPERATORS = ("plus", "minus", "times", "divided by")
# Conversion units by quantity: canonical (plural) name -> singular.
UNITS = {
    "length": {"meters": "meter", "feet": "foot", "inches": "inch",
               "centimeters": "centimeter", "kilometers": "kilometer",
               "miles": "mile", "yards": "yard"},
    "mass": {"kilograms": "kilogram", "pounds": "pound", "grams": "gram",
             "ounces": "ounce"},
    "volume": {"liters": "liter", "cups": "cup", "milliliters": "milliliter",
               "gallons": "gallon", "tablespoons": "tablespoon",
               "teaspoons": "teaspoon"},
    "temperature": {"fahrenheit": "fahrenheit", "celsius": "celsius",
                    "kelvin": "kelvin"},
}


def _amount(rng, low=1, high=100):
    """A number and its spoken form; sometimes with one decimal digit."""
    whole = int(rng.integers(low, high + 1))
    if rng.random() < 0.15:
        tenth = int(rng.integers(1, 10))
        return whole + tenth / 10, f"{number_to_words(whole)} point {number_to_words(tenth)}"
    return float(whole), number_to_words(whole)


def _counted(n, unit):
    """``"one minute"`` / ``"ten minutes"``."""
    return f"{number_to_words(n)} {unit}{'' if n == 1 else 's'}"


def _set_timer(rng):
    parts = {"hours": 0, "minutes": 0, "seconds": 0}
    pattern = pick(rng, [("minutes",), ("minutes",), ("seconds",), ("hours",),
                          ("minutes", "seconds"), ("hours", "minutes")])
    for unit in pattern:
        parts[unit] = int(rng.integers(1, 6 if unit == "hours" else 60))
    spoken = " and ".join(_counted(parts[u], u[:-1]) for u in pattern)
    slots = {}
    if rng.random() < 0.4:
        name = pick(rng, TIMER_NAMES)
        slots["name"] = name
        text = pick(rng, [f"set a {name} timer for {spoken}",
                           f"start a {name} timer for {spoken}",
                           f"can you set a {name} timer for {spoken}",
                           f"{name} timer {spoken}"])
    else:
        text = pick(rng, [f"set a timer for {spoken}", f"start a timer for {spoken}",
                           f"set timer for {spoken}", f"timer for {spoken}",
                           f"please set a timer for {spoken}",
                           f"count down {spoken}"])
    slots.update(parts)
    return text, slots


def _set_alarm(rng):
    hour = int(rng.integers(1, 13))
    minute = int(pick(rng, [0, 0, 15, 30, 45, int(rng.integers(1, 60))]))
    am_or_pm = pick(rng, ["AM", "PM"])
    if minute == 0:
        clock = number_to_words(hour) + pick(rng, ["", " o'clock"])
    elif minute < 10:
        clock = f"{number_to_words(hour)} oh {number_to_words(minute)}"
    else:
        clock = f"{number_to_words(hour)} {number_to_words(minute)}"
    when = f"{clock} {' '.join(am_or_pm.lower())}"
    text = pick(rng, [f"set an alarm for {when}", f"wake me up at {when}",
                       f"set alarm for {when}", f"alarm at {when}",
                       f"please set an alarm for {when}",
                       f"i need an alarm at {when}"])
    return text, {"am_or_pm": am_or_pm, "alarm_hour": hour, "alarm_minute": minute}


def _simple_math(rng):
    number1, spoken1 = _amount(rng, 0, 100)
    number2, spoken2 = _amount(rng, 1, 100)
    operator = pick(rng, OPERATORS)
    expr = f"{spoken1} {operator} {spoken2}"
    text = pick(rng, [f"what is {expr}", f"what's {expr}", f"calculate {expr}",
                       f"how much is {expr}", f"{expr}", f"tell me {expr}"])
    return text, {"number1": number1, "operator": operator, "number2": number2}


def _unit_conversion(rng):
    quantity = pick(rng, sorted(UNITS))
    names = sorted(UNITS[quantity])
    i, j = rng.permutation(len(names))[:2]
    unit1, unit2 = names[i], names[j]
    amount, spoken = _amount(rng, 1, 100)
    if quantity == "temperature":
        source = f"{spoken} degrees {unit1}"
        text = pick(rng, [f"what is {source} in {unit2}", f"convert {source} to {unit2}",
                           f"how much is {source} in {unit2}"])
    else:
        source = f"{spoken} {UNITS[quantity][unit1] if amount == 1 else unit1}"
        text = pick(rng, [f"how many {unit2} are in {source}",
                           f"how many {unit2} in {source}",
                           f"convert {source} to {unit2}",
                           f"what is {source} in {unit2}"])
    return text, {"unit1": unit1, "unit2": unit2, "amount": amount}


_MAKERS = {"SetTimer": _set_timer, "SetAlarm": _set_alarm,
           "SimpleMath": _simple_math, "UnitConversion": _unit_conversion}


def make_command(rng, intent=None):
    """One spoken command and its semantics.

    Arguments
    ---------
    rng : numpy.random.Generator
    intent : str, optional
        One of ``INTENTS``; drawn uniformly if None.

    Returns
    -------
    (str, dict)
        Lower-case transcription and ``{'intent': ..., 'slots': {...}}``.

    >>> import numpy as np
    >>> text, sem = make_command(np.random.default_rng(3), "SetAlarm")
    >>> sem["intent"], sorted(sem["slots"])
    ('SetAlarm', ['alarm_hour', 'alarm_minute', 'am_or_pm'])
    >>> text == text.lower()
    True
    """
    intent = intent or pick(rng, INTENTS)
    text, slots = _MAKERS[intent](rng)
    return text, {"intent": intent, "slots": slots}


def speakable(text):
    """The text given to espeak for a transcription: espeak reads "a m" as
    "uh em", so the letters of a.m./p.m. are written as an abbreviation.

    >>> speakable("wake me up at seven a m")
    'wake me up at seven a.m.'
    """
    words = text.split()
    if words[-2:] in (["a", "m"], ["p", "m"]):
        words[-2:] = [f"{words[-2]}.m."]
    return " ".join(words)


def _speakers(seed, kind, split, count, taken):
    rng = rng_for(seed, "timers_and_such", "speakers", kind, split)
    if kind == "real":
        speakers = make_speakers(rng, count, snr_db=(10.0, 30.0))
        ids = unique_values(rng, count, uuid_like, taken)
    else:
        speakers = make_speakers(rng, count, clean=True)
        ids = unique_values(rng, count, lambda r: "synth-" + hex_string(r, 10), taken)
    return [replace(s, speaker_id=i) for s, i in zip(speakers, ids)]


def build(root, seed, size, renderer):
    """Write ``timers-and-such/`` into ``root`` (the corpus folder).

    ``size`` is a ``SIZES`` preset. Returns the ``summarise`` statistics
    plus the number of recordings of each split."""
    taken = set()
    rows, recordings = {}, []
    for kind in ("real", "synth"):
        for split in SPLITS:
            name = f"{split}-{kind}"
            speakers = _speakers(seed, kind, split, size[f"{kind}_speakers"][split], taken)
            rows[name] = []
            for spk in speakers:
                rng = rng_for(seed, "timers_and_such", "prompts", spk.speaker_id)
                first = int(rng.integers(len(INTENTS)))
                for k in range(size[f"{kind}_utts"]):
                    # Cycle through the intents so every speaker covers them.
                    intent = INTENTS[(first + k) % len(INTENTS)]
                    text, semantics = make_command(rng, intent)
                    path = f"{name}/{spk.speaker_id}_prompt-{k}.wav"
                    recordings.append(Recording(path=path, text=speakable(text), speaker=spk))
                    rows[name].append([path, spk.speaker_id, text, semantics])
    durations = renderer.render(recordings, root, seed)
    for name, split_rows in rows.items():
        write_text(root / f"{name}.csv", csv_lines(
            [["path", "speakerId", "transcription", "semantics"]]
            + [[p, s, t, repr(sem)] for p, s, t, sem in split_rows]))
    stats = summarise(durations, [r.speaker.speaker_id for r in recordings])
    stats["splits"] = {name: len(r) for name, r in rows.items()}
    return stats
