"""Timers and Such preparation for spoken language understanding and slot
filling (SF).

Input layout (the corpus as distributed; ``data_folder`` is the folder
``timers-and-such``)::

    data_folder/{train,dev,test}-{real,synth}/<file>.wav
    data_folder/{train,dev,test}-{real,synth}.csv   path,speakerId,transcription,semantics

``path`` is relative to ``data_folder``; ``semantics`` is the Python literal
of a dict ``{'intent': ..., 'slots': {...}}``.

Output: ``save_folder/{train,dev,test}.csv`` with columns
``ID,duration,wav,spk_id,transcript,semantics,slot_transcript``. By default
``train`` = ``train-real`` + ``train-synth`` (``train_splits`` chooses, e.g.
``("train-real",)``), ``dev`` = ``dev-real``, ``test`` = ``test-real`` (the
Match-to-win / SpeechBrain SLU setup). ``ID`` is ``<split>_<file stem>``
(e.g. ``train-real_<speaker>_prompt-3``), ``spk_id`` the ``speakerId``,
``transcript`` the transcription upper-cased (hyphens split into spaces,
blanks collapsed) and ``semantics`` the original string.

Slot-tag format (``slot_transcript``)
-------------------------------------
The transcript words with every slot value wrapped in an opening and a
closing tag, each tag its own blank-separated token::

    SET A <name> PASTA </name> TIMER FOR <minutes> TEN </minutes> MINUTES
    WHAT IS <number1> THREE POINT FIVE </number1> <operator> PLUS </operator> <number2> TWO </number2>
    WAKE ME UP AT <alarm_hour> SEVEN </alarm_hour> <alarm_minute> OH FIVE </alarm_minute> <am_or_pm> A M </am_or_pm>

Tags are ``<slot>`` / ``</slot>`` with the slot name of the semantics dict
(lower case, so they cannot be confused with the upper-case words); tags
never nest or overlap. A CTC recipe maps each tag to one output token;
:func:`parse_slot_transcript` turns a (decoded) slot transcript back into
the plain words and the ``(slot, value words)`` pairs.

The tags are derived from the semantics and the transcript
(:func:`tag_transcript`): every slot value is spelled the ways it can be
spoken (numbers as words, e.g. ``52.2`` -> ``FIFTY TWO POINT TWO``, also as
digits; ``AM`` -> ``A M``/``AM``/``A.M.``; unit names singular or plural;
alarm minutes ``5`` -> ``OH FIVE``; timer durations must be followed by
their unit word, so ``minutes=10`` tags ``TEN`` in ``TEN MINUTES``) and the
first unused occurrence in the transcript is tagged (slots with the longest
spoken forms first; a number never matches part of a longer number).
Timer durations equal to 0 and an alarm minute of 0 are the defaults of
values that are not spoken ("SEVEN O'CLOCK"); they are not tagged when they
cannot be found. A semantics string that cannot be parsed, or a slot value
that cannot be found in the transcript, is a bad input: listed with its
audio file (nothing written), or the utterance is left out with
``skip_bad_files=True``.

Bad inputs follow ``data_prep.problems``: a missing data folder or split CSV is
fatal; a CSV line whose audio is missing, an unreadable/empty file or one at
another sample rate is listed, or left out with ``skip_bad_files=True``.

Command line::

    python -m data_prep.timers_and_such --data_folder data/mini/timers-and-such \\
        --save_folder results/prep/timers_and_such
"""
import ast
import logging
import os
import re
import sys

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .cli import cli_parser, run_cli
from .manifests import read_table, relative_to_root
from .problems import check_data_folder
from .runner import collected_entries, run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id", "transcript", "semantics",
               "slot_transcript"]
METADATA_COLUMNS = ["path", "speakerId", "transcription", "semantics"]
DEFAULT_TRAIN = ("train-real", "train-synth")
DEFAULT_DEV = ("dev-real",)
DEFAULT_TEST = ("test-real",)

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = frozenset(w.upper() for w in _ONES + _TENS[2:]
                         + ["hundred", "thousand", "point"])
# Slots whose value follows another number ("SEVEN FORTY FIVE"): no
# word-boundary check against neighbouring number words.
CLOCK_SLOTS = frozenset({"alarm_hour", "alarm_minute"})
TIMER_UNITS = {"hours": ("HOURS", "HOUR", "HRS", "HR"),
               "minutes": ("MINUTES", "MINUTE", "MINS", "MIN"),
               "seconds": ("SECONDS", "SECOND", "SECS", "SEC")}
UNSPOKEN_ZERO = frozenset({"hours", "minutes", "seconds", "alarm_minute"})
OPERATOR_SYNONYMS = {"TIMES": ("MULTIPLIED BY",), "DIVIDED BY": ("OVER",)}
_IRREGULAR_SINGULAR = {"FEET": "FOOT", "INCHES": "INCH"}
_TAG = re.compile(r"^<(/?)([A-Za-z0-9_]+)>$")


class SlotTagError(ValueError):
    """The semantics of an utterance cannot be parsed or tagged in its
    transcript."""


def number_to_words(n):
    """English words of a non-negative integer below a million (upper case).

    >>> number_to_words(342)
    'THREE HUNDRED FORTY TWO'
    """
    n = int(n)
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        words = _ONES[n]
    elif n < 100:
        words = _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    elif n < 1000:
        words = _ONES[n // 100] + " hundred" + (
            "" if n % 100 == 0 else " " + number_to_words(n % 100).lower())
    else:
        words = number_to_words(n // 1000).lower() + " thousand" + (
            "" if n % 1000 == 0 else " " + number_to_words(n % 1000).lower())
    return words.upper()


def spoken_numbers(value):
    """The ways a number slot value can be written in a transcript, most
    specific first.

    >>> spoken_numbers(52.2)
    ['FIFTY TWO POINT TWO', '52.2']
    >>> spoken_numbers(105)[:2]
    ['ONE HUNDRED FIVE', 'ONE HUNDRED AND FIVE']
    >>> spoken_numbers(1.0)
    ['ONE', '1']
    """
    number = float(value)
    if number < 0 or number >= 1_000_000:
        return [str(value).upper()]
    text = repr(number) if not number.is_integer() else str(int(number))
    whole, _, decimals = text.partition(".")
    words = number_to_words(int(whole))
    forms = []
    if decimals:
        tail = " POINT " + " ".join(_ONES[int(d)].upper() for d in decimals)
        forms += [words + tail]
        if words.startswith("ONE HUNDRED"):
            forms.append("A" + words[3:] + tail)
    else:
        forms.append(words)
        if " HUNDRED " in words:
            forms.append(words.replace(" HUNDRED ", " HUNDRED AND ", 1))
        if words.startswith("ONE HUNDRED"):
            forms.append("A" + words[3:])
    forms.append(text)
    return forms


def _singular(unit):
    if unit in _IRREGULAR_SINGULAR:
        return _IRREGULAR_SINGULAR[unit]
    return unit[:-1] if unit.endswith("S") and not unit.endswith("SS") else unit


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def slot_candidates(slot, value):
    """``[(value words, words that must follow)]`` to look for, in order of
    preference, for one slot value."""
    if _is_number(value):
        if slot == "alarm_minute" and 0 < value < 10:
            digit = number_to_words(value)
            spoken = [f"OH {digit}", f"O {digit}", f"ZERO {digit}"] + spoken_numbers(value)
        else:
            spoken = spoken_numbers(value)
        if value == 1 and (slot in TIMER_UNITS or slot == "amount"):
            spoken += ["A", "AN"]  # "AN HOUR", "A POUND"
        follows = ([tuple(f.split()) for f in TIMER_UNITS[slot]] if slot in TIMER_UNITS
                   else [()])
        return [(s.split(), f) for s in spoken for f in follows]
    text = str(value).strip().upper()
    if not text:
        return []
    if slot == "am_or_pm" and text in ("AM", "PM"):
        spoken = [f"{text[0]} M", text, f"{text[0]}.M.", f"{text[0]}. M."]
    else:
        spoken = [text]
        if slot.startswith("unit"):
            spoken.append(_singular(text))
        if slot == "operator":
            spoken += list(OPERATOR_SYNONYMS.get(text, ()))
    return [(s.replace("-", " ").split(), ()) for s in dict.fromkeys(spoken)]


def normalise_transcript(text):
    """Upper case, hyphens as spaces, blanks collapsed.

    >>> normalise_transcript("set a  timer for twenty-one minutes")
    'SET A TIMER FOR TWENTY ONE MINUTES'
    """
    return " ".join(text.replace("-", " ").upper().split())


def parse_semantics(semantics):
    """``(intent, slots dict)`` of a semantics string; raises
    :class:`SlotTagError` if it is not a dict literal with ``intent`` and
    ``slots``.

    >>> parse_semantics("{'intent': 'SetAlarm', 'slots': {'am_or_pm': 'AM'}}")
    ('SetAlarm', {'am_or_pm': 'AM'})
    """
    try:
        value = ast.literal_eval(semantics.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise SlotTagError(f"cannot parse semantics {semantics!r} "
                           f"({type(err).__name__}: {err})") from None
    if (not isinstance(value, dict) or not isinstance(value.get("intent"), str)
            or not isinstance(value.get("slots", {}), dict)):
        raise SlotTagError(f"cannot parse semantics {semantics!r}: expected a dict "
                           "{'intent': str, 'slots': dict}")
    return value["intent"], dict(value.get("slots", {}))


def _find(words, taken, cand, follow, boundary):
    """Start of the first unused occurrence of ``cand`` followed by
    ``follow``, or None. With ``boundary``, an occurrence next to a number
    word is not a match (``THREE`` in ``TWENTY THREE``)."""
    n, m = len(words), len(cand)
    for start in range(n - m - len(follow) + 1):
        end = start + m
        if words[start:end] != cand or any(taken[start:end]):
            continue
        if follow and tuple(words[end:end + len(follow)]) != follow:
            continue
        if boundary and ((start > 0 and words[start - 1] in NUMBER_WORDS)
                         or (end < n and words[end] in NUMBER_WORDS)):
            continue
        return start
    return None


def tag_transcript(transcript, semantics):
    """The slot transcript (see the module docstring) of one utterance.

    Arguments
    ---------
    transcript : str
        The transcription (any case).
    semantics : str or dict
        The semantics string (or the parsed dict).

    Returns
    -------
    str

    Raises ``SlotTagError`` for unparsable semantics or a slot value that
    is not in the transcript.

    >>> tag_transcript("set a pasta timer for ten minutes",
    ...     "{'intent': 'SetTimer', 'slots': {'name': 'pasta', 'hours': 0, "
    ...     "'minutes': 10, 'seconds': 0}}")
    'SET A <name> PASTA </name> TIMER FOR <minutes> TEN </minutes> MINUTES'
    >>> tag_transcript("what is three plus twenty three",
    ...     {'intent': 'SimpleMath', 'slots': {'number1': 3.0, 'operator': 'plus',
    ...                                         'number2': 23.0}})
    'WHAT IS <number1> THREE </number1> <operator> PLUS </operator> <number2> TWENTY THREE </number2>'
    """
    if isinstance(semantics, dict):
        slots = dict(semantics.get("slots", {}))
    else:
        _, slots = parse_semantics(semantics)
    words = normalise_transcript(transcript).split()
    taken = [False] * len(words)
    spans = []
    todo = []
    for name, value in slots.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        cands = slot_candidates(name, value)
        longest = max((len(c) for c, _ in cands), default=0)
        todo.append((-longest, name, value, cands))
    # longest spoken forms first, then by slot name (number1 before number2)
    for _, name, value, cands in sorted(todo, key=lambda t: (t[0], t[1])):
        for cand, follow in cands:
            start = _find(words, taken, cand, follow,
                          _is_number(value) and name not in CLOCK_SLOTS)
            if start is not None:
                spans.append((start, start + len(cand), name))
                taken[start:start + len(cand)] = [True] * len(cand)
                break
        else:
            if name in UNSPOKEN_ZERO and _is_number(value) and value == 0:
                continue
            tried = "; ".join(" ".join(c + list(f)) for c, f in cands[:6])
            raise SlotTagError(f"slot {name}={value!r} not found in transcript "
                               f"{' '.join(words)!r} (looked for: {tried})")
    out = []
    opening = {s: name for s, _, name in spans}
    closing = {e: name for _, e, name in spans}
    for k, word in enumerate(words + [None]):
        if k in closing:
            out.append(f"</{closing[k]}>")
        if k in opening:
            out.append(f"<{opening[k]}>")
        if word is not None:
            out.append(word)
    return " ".join(out)


def parse_slot_transcript(text):
    """Plain words and ``[(slot, value words)]`` of a slot transcript;
    raises ``ValueError`` for unbalanced or nested tags.

    >>> parse_slot_transcript("SET A TIMER FOR <minutes> TEN </minutes> MINUTES")
    ('SET A TIMER FOR TEN MINUTES', [('minutes', 'TEN')])
    """
    words, slots, current, value = [], [], None, []
    for token in text.split():
        match = _TAG.match(token)
        if not match:
            words.append(token)
            if current is not None:
                value.append(token)
            continue
        closing, name = match.groups()
        if not closing:
            if current is not None:
                raise ValueError(f"tag <{name}> opened inside <{current}>: {text!r}")
            current, value = name, []
        else:
            if current != name:
                raise ValueError(f"tag </{name}> closes {current!r}: {text!r}")
            slots.append((name, " ".join(value)))
            current = None
    if current is not None:
        raise ValueError(f"tag <{current}> is never closed: {text!r}")
    return " ".join(words), slots


def prepare_timers_and_such(data_folder, save_folder, train_splits=DEFAULT_TRAIN,
                            dev_splits=DEFAULT_DEV, test_splits=DEFAULT_TEST,
                            skip_prep=False, skip_bad_files=False, num_workers=None,
                            sample_rate=SAMPLE_RATE, progress=True):
    """Write ``{train,dev,test}.csv`` (``ID,duration,wav,spk_id,transcript,
    semantics,slot_transcript``) for Timers and Such.

    Arguments
    ---------
    data_folder : str
        The ``timers-and-such`` folder.
    save_folder : str
        Where the CSVs go.
    train_splits, dev_splits, test_splits : sequence of str
        Corpus splits (``train-real``, ``train-synth``, ``dev-real`` ...)
        merged into each output.
    skip_prep : bool
        If True, do nothing (SpeechBrain convention).
    skip_bad_files : bool
        Leave out bad utterances instead of raising ``DataPreparationError``.
    num_workers : int, optional
        Processes scanning audio headers (default: every core).
    sample_rate : int
        Expected sample rate of every file.
    progress : bool
        Progress bar while scanning.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``)

    Example
    -------
    >>> import tempfile
    >>> try:
    ...     prepare_timers_and_such("/no/such/folder", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the timers-and-such folder, which holds train-real.csv ...)
    """
    if skip_prep:
        logger.info("Timers and Such preparation skipped (skip_prep=True)")
        return None
    groups = {"train": _as_list(train_splits), "dev": _as_list(dev_splits),
              "test": _as_list(test_splits)}
    if not all(groups.values()):
        raise ValueError(f"every output needs at least one corpus split, got {groups}")
    data_folder = os.path.abspath(data_folder)
    outputs = {name: f"{name}.csv" for name in groups}
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "splits": groups,
               "version": PREP_VERSION}

    def collect(todo, problems):
        hint = "pass the timers-and-such folder, which holds train-real.csv ..."
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        entries = {name: [] for name in todo}
        for name in todo:
            for split in groups[name]:
                csv_path = os.path.join(data_folder, f"{split}.csv")
                for line, row in read_table(csv_path, problems, METADATA_COLUMNS,
                                            what="split CSV"):
                    entry = _entry(data_folder, split, csv_path, line, row, problems)
                    if entry is not None:
                        entries[name].append(entry)

        return collected_entries(entries, sample_rate, CSV_COLUMNS)

    return run_preparation("timers_and_such", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="Timers and Such preparation")


def _as_list(splits):
    return [splits] if isinstance(splits, str) else list(splits)


def _entry(data_folder, split, csv_path, line, row, problems):
    """One manifest row (without duration) from a split CSV line, or None
    (with a problem added) if the line is bad."""
    rel = (row.get("path") or "").strip().replace("\\", "/")
    where = f"{os.path.basename(csv_path)} line {line}"
    if not rel:
        problems.add(csv_path, f"line {line}: empty path")
        return None
    path = os.path.join(data_folder, rel)
    if not os.path.isfile(path):
        problems.add(path, f"listed in {where} but the audio file is missing")
        return None
    transcription = (row.get("transcription") or "").strip()
    if not transcription:
        problems.add(path, f"empty transcription ({where})")
        return None
    semantics = (row.get("semantics") or "").strip()
    try:
        slot_transcript = tag_transcript(transcription, semantics)
    except SlotTagError as err:
        problems.add(path, f"{err} ({where})")
        return None
    stem = os.path.splitext(os.path.basename(rel))[0]
    return {"ID": f"{split}_{stem}", "path": path,
            "wav": relative_to_root(path, data_folder),
            "spk_id": (row.get("speakerId") or "").strip(),
            "transcript": normalise_transcript(transcription),
            "semantics": semantics, "slot_transcript": slot_transcript}


def main(argv=None):
    parser = cli_parser("timers_and_such",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,transcript,"
                        "semantics,slot_transcript) for Timers and Such.",
                        "the timers-and-such folder (holds train-real.csv ...)")
    parser.add_argument("--train_splits", nargs="+", default=list(DEFAULT_TRAIN))
    parser.add_argument("--dev_splits", nargs="+", default=list(DEFAULT_DEV))
    parser.add_argument("--test_splits", nargs="+", default=list(DEFAULT_TEST))
    return run_cli(parser, argv, prepare_timers_and_such,
                   "leave out bad utterances instead of stopping")


if __name__ == "__main__":
    sys.exit(main())
