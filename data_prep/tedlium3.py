"""TED-LIUM release 3 preparation for letter CTC (paper 002, Table 5 "TL3").

Input layout (the ``legacy`` distribution of ``TEDLIUM_release-3.tgz``;
``data_folder`` is the ``TEDLIUM_release-3`` folder)::

    data_folder/legacy/{train,dev,test}/sph/<talk>.sph   16 kHz mono NIST SPHERE
    data_folder/legacy/{train,dev,test}/stm/<talk>.stm
        <talk> <channel> <speaker> <start s> <end s> <label> <transcript>
        e.g. AaronHuey_2010X 1 AaronHuey_2010X 17.82 28.81 <o,f0,male> i 've been ...

One manifest row per STM segment: the talk's ``.sph`` is not cut, the row
names a sample range of it. Output ``save_folder/tedlium3-<split>.csv`` with
columns ``ID,duration,wav,start,stop,spk_id,wrd,segments``:

* ``ID`` ``<talk>-<start cs>-<end cs>`` (centiseconds, 7 digits);
* ``wav`` the talk (``$data_root/legacy/train/sph/<talk>.sph``; load with
  ``replacements={"data_root": data_folder}``), ``start``/``stop`` samples
  of the segment (STOP exclusive; the convention of the Speech Commands
  manifests, which ``speechbrain_ext.downstream.recipe.audio_dataset`` reads),
  ``segments`` the same range as ``$data_root/...sph:START:STOP`` (the
  convention of ``speechbrain_ext.io.data.read_piece`` and of
  ``data_prep.length_splits.verify_manifest``); ``duration`` is
  ``(stop - start) / 16000``;
* ``spk_id`` the STM speaker field, ``wrd`` the transcript normalised to the
  29-symbol letter vocabulary (:func:`tedlium_text`).

Transcripts (:func:`tedlium_text`): segments whose text is
``ignore_time_segment_in_scoring`` (music, applause, foreign speech) are not
utterances and are left out; ``<unk>`` tokens are removed
(``unk="drop_token"``, the default: the dev/test sets stay complete) or
their whole segment is left out (``unk="drop_utterance"``); other markers
(``<...>``, ``{...}``, ``[...]``) are removed; a token that starts with an
apostrophe is a clitic split off by TED-LIUM's tokenisation and is joined to
the word before it (``i 've`` -> ``I'VE``); then :func:`letters_text`
(shared with VoxPopuli and Fisher + Switchboard). A segment with nothing
left is left out (counted in the log).

Splits: ``train``, ``dev``, ``test`` (the legacy folders) and training
subsets ``train-<N>h`` / ``train-<N>min`` / ``train-<N>s`` (default
``train-10h``, the 10 h of paper 002). Neither paper 002 nor Hsu et al.
(its [13], whose setup it follows) says how their 10 h were drawn; here a
subset is made of *whole talks* taken in a fixed pseudo-random order
(:func:`select_units`: SHA-1 of ``"<subset_seed>:<talk>"``) until the
subset holds at least N hours. Deterministic, independent of file system
order, nested (the 1 h subset is part of the 10 h one), and every speaker is
either wholly in or out.

Audio: 16 kHz mono SPHERE, read by ``soundfile`` (libsndfile reads NIST
SPHERE PCM, u-law and a-law). Shorten-compressed SPHERE
(``sample_coding ...shorten...``, as LDC telephone corpora ship) is not
readable by libsndfile: such a file is a problem whose message gives the
``sph2pipe`` command that decompresses it (:func:`sphere_problem`). A
segment may end at most ``END_TOLERANCE_S`` after the end of its file (then
it is cut at the end); beyond that it is a problem. Bad inputs follow
``data_prep.problems``.

Command line::

    python -m data_prep.tedlium3 --data_folder /corpora/TEDLIUM_release-3 \\
        --save_folder results/prep/tedlium3 --splits train-10h dev test
"""
import hashlib
import logging
import os
import re
import sys
import unicodedata
from collections import Counter

from speechbrain_ext.io.data import SAMPLE_RATE, format_segments

from .audio_scan import DEFAULT_FULL_DECODE
from .cli import cli_parser, run_cli
from .manifests import format_seconds, relative_to_root
from .problems import check_data_folder
from .runner import run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "wrd", "segments"]
SPLITS = ("train", "dev", "test")
DEFAULT_SPLITS = ("train-10h", "dev", "test")
IGNORE_SEGMENT = "ignore_time_segment_in_scoring"
UNK_POLICIES = ("drop_token", "drop_utterance")
END_TOLERANCE_S = 0.5  # a segment may end this far after its file's end (then cut)
LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")


# ------------------------------------------------------------ shared helpers
# (used by data_prep.voxpopuli and data_prep.fisher_swbd as well)

def parse_subset(split, base_splits=SPLITS):
    """``(base split, seconds or None)`` of a split name: a base split, or a
    training subset ``<base>-<N>h`` / ``-<N>min`` / ``-<N>s``.

    >>> parse_subset("train-10h"), parse_subset("train-30min"), parse_subset("dev")
    (('train', 36000.0), ('train', 1800.0), ('dev', None))
    """
    if split in base_splits:
        return split, None
    match = re.fullmatch(r"(.+)-(\d+(?:\.\d+)?)(h|min|s)", str(split))
    if not match or match.group(1) not in base_splits:
        raise ValueError(f"unknown split {split!r}; expected one of {list(base_splits)} or a "
                         f"subset such as 'train-10h', 'train-30min'")
    value, unit = float(match.group(2)), match.group(3)
    if value <= 0:
        raise ValueError(f"{split!r}: a subset needs a positive size")
    return match.group(1), value * {"h": 3600.0, "min": 60.0, "s": 1.0}[unit]


def hash_order(keys, seed=0, salt=""):
    """``keys`` in a fixed pseudo-random order: by SHA-1 of
    ``"<salt><seed>:<key>"`` (depends on the keys only, not on their order).

    >>> hash_order(["a", "b", "c"]) == hash_order(["c", "a", "b"])
    True
    """
    def key(k):
        return hashlib.sha1(f"{salt}{seed}:{k}".encode("utf-8")).hexdigest(), str(k)

    return sorted(keys, key=key)


def select_units(unit_seconds, target_seconds, seed=0):
    """Whole units (talks, speeches, conversation sides) for a subset of at
    least ``target_seconds``: units in :func:`hash_order`, taken until the
    total reaches the target (so it overshoots by less than one unit).
    Returns ``(units, seconds)``; all units when the corpus is smaller.

    >>> select_units({"a": 5.0, "b": 5.0, "c": 5.0}, 7.0)
    (['a', 'b'], 10.0)
    >>> select_units({"a": 5.0, "b": 5.0, "c": 5.0}, 3.0)  # nested: a prefix
    (['a'], 5.0)
    """
    chosen, total = [], 0.0
    for unit in hash_order(unit_seconds, seed):
        if total >= target_seconds:
            break
        chosen.append(unit)
        total += float(unit_seconds[unit])
    return chosen, total


def subset_rows(rows, unit_of, target_seconds, seed, what):
    """The rows of the units :func:`select_units` chooses (``unit_of(row)``
    names a row's unit), sorted by ID; logs the subset's size."""
    seconds = Counter()
    for row in rows:
        seconds[unit_of(row)] += float(row["duration"])
    units, total = select_units(seconds, target_seconds, seed)
    chosen = set(units)
    if total < target_seconds:
        logger.warning("%s: the corpus holds only %.2f h, less than the %.2f h asked for; "
                       "the subset is all of it", what, total / 3600, target_seconds / 3600)
    logger.info("%s: %d of %d units, %.3f h", what, len(units), len(seconds), total / 3600)
    return [r for r in rows if unit_of(r) in chosen]


_ONES = ("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN "
         "FOURTEEN FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN").split()
_TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()
_SCALES = ((10 ** 12, "TRILLION"), (10 ** 9, "BILLION"), (10 ** 6, "MILLION"),
           (1000, "THOUSAND"), (100, "HUNDRED"))


def spell_number(n):
    """A non-negative integer as upper-case English words (cardinal, no
    "and"; years read as numbers).

    >>> spell_number(2019), spell_number(40), spell_number(1000005)
    ('TWO THOUSAND NINETEEN', 'FORTY', 'ONE MILLION FIVE')
    """
    n = int(n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return spell_number(head) + " " + name + ("" if rest == 0 else " " + spell_number(rest))
    raise AssertionError(n)


# Latin letters NFKD does not decompose into A-Z + a combining mark
_LATIN_EXTRA = {"Ø": "O", "Æ": "AE", "Œ": "OE", "ß": "SS", "Ł": "L", "Đ": "D", "Ð": "D",
                "Þ": "TH", "ı": "I", "ø": "O", "æ": "AE", "œ": "OE", "ł": "L", "đ": "D",
                "ð": "D", "þ": "TH"}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def letters_text(text):
    """``text`` in the 29-symbol letter vocabulary (A-Z, apostrophe, space;
    ``speechbrain_ext.downstream.vocabulary.LetterVocabulary``), or None if
    it holds a letter that has no A-Z spelling.

    Rules, in order: typographic apostrophes become ``'``; accents are
    stripped (NFKD: ``é`` -> ``E``) and a few Latin letters spelled out
    (``ø`` -> ``O``, ``æ`` -> ``AE``, ``ß`` -> ``SS`` ...); upper case;
    ``&`` -> ``AND``, ``%`` -> ``PERCENT``; integers are spelled out as
    cardinals (:func:`spell_number`; ``1.5`` -> ``ONE FIVE``: the transfer
    corpora's transcripts spell numbers, this is a fallback); every other
    character that is not a letter or apostrophe (hyphens, punctuation,
    slashes) becomes a word break; words made only of apostrophes are
    dropped; blanks are collapsed.

    >>> letters_text("Well-known  co-operation, 50% & more!")
    'WELL KNOWN CO OPERATION FIFTY PERCENT AND MORE'
    >>> letters_text("José’s café in 2019")
    "JOSE'S CAFE IN TWO THOUSAND NINETEEN"
    >>> letters_text("' quoted '"), letters_text("Ελλάδα")
    ('QUOTED', None)
    """
    text = unicodedata.normalize("NFKD", str(text).translate(_APOSTROPHES))
    text = "".join(_LATIN_EXTRA.get(c, c) for c in text if not unicodedata.combining(c))
    text = text.upper().replace("&", " AND ").replace("%", " PERCENT ")
    text = re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", text)  # A1 -> A 1
    text = re.sub(r"\d+", lambda m: spell_number(m.group(0)), text)
    out = []
    for char in text:
        if char in LETTERS:
            out.append(char)
        elif char.isalpha():
            return None
        else:
            out.append(" ")
    words = [w for w in "".join(out).split() if w.strip("'")]
    return " ".join(words)


def read_sphere_header(path):
    """The fields of a NIST SPHERE header (``{name: int / float / str}``).

    Raises ``ValueError`` if the file does not start with a SPHERE header,
    ``OSError`` if it cannot be read."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
        if not head.startswith(b"NIST_1A"):
            raise ValueError("not a NIST SPHERE file (no NIST_1A header)")
        try:
            size = int(head.split(b"\n", 2)[1])
        except (IndexError, ValueError):
            raise ValueError("malformed NIST SPHERE header (no header size)") from None
        if size > len(head):
            head += handle.read(size - len(head))
    fields = {}
    for line in head[:size].decode("latin-1").splitlines()[2:]:
        line = line.strip()
        if line == "end_head":
            break
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[1].startswith("-"):
            continue
        name, kind, value = parts
        try:
            fields[name] = (int(value) if kind == "-i" else float(value) if kind == "-r"
                            else value)
        except ValueError:
            fields[name] = value
    return fields


def decompress_command(path):
    """The shell command that turns a shorten-compressed SPHERE file into an
    uncompressed 16-bit PCM one in place (``sph2pipe``: LDC's tool, also in
    Kaldi's ``tools/``)."""
    return f"sph2pipe -f sph -p {path} {path}.pcm && mv {path}.pcm {path}"


def sphere_problem(path, channels=None):
    """What makes a ``.sph`` file unusable before libsndfile even opens it,
    or None: not SPHERE, shorten-compressed (the message gives the
    :func:`decompress_command`), or not ``channels`` channels.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "sw02001.sph")
    >>> head = (b"NIST_1A\\n   1024\\nchannel_count -i 2\\nsample_rate -i 8000\\n"
    ...         b"sample_coding -s26 ulaw,embedded-shorten-v2.00\\nend_head\\n")
    >>> _ = open(path, "wb").write(head.ljust(1024) + b"\\0" * 64)
    >>> print(sphere_problem(path).split(";")[0])
    shorten-compressed NIST SPHERE (sample_coding ulaw,embedded-shorten-v2.00), which soundfile/libsndfile cannot decode
    """
    try:
        fields = read_sphere_header(path)
    except FileNotFoundError:
        return "file does not exist"
    except OSError as err:
        return f"cannot read file ({err.strerror})"
    except ValueError as err:
        return str(err)
    coding = str(fields.get("sample_coding", "pcm"))
    if "shorten" in coding.lower():
        return (f"shorten-compressed NIST SPHERE (sample_coding {coding}), which "
                "soundfile/libsndfile cannot decode; decompress it first: "
                f"{decompress_command(path)}")
    count = fields.get("channel_count")
    if channels is not None and count is not None and count != channels:
        return f"{count} channel(s), expected {channels}"
    return None


# --------------------------------------------------------------- TED-LIUM
_MARKER = re.compile(r"^(<[^>]*>|\{[^}]*\}|\[[^\]]*\])$")


def tedlium_text(text, unk="drop_token"):
    """A TED-LIUM STM transcript in the letter vocabulary; None when the
    segment is not an utterance (``ignore_time_segment_in_scoring``, or a
    ``<unk>`` with ``unk="drop_utterance"``). See the module docstring.

    >>> tedlium_text("i 've been <unk> here since {NOISE} it 's done")
    "I'VE BEEN HERE SINCE IT'S DONE"
    >>> tedlium_text("ignore_time_segment_in_scoring") is None
    True
    >>> tedlium_text("a <unk> b", unk="drop_utterance") is None
    True
    """
    if unk not in UNK_POLICIES:
        raise ValueError(f"unk must be one of {UNK_POLICIES}, got {unk!r}")
    tokens = str(text).split()
    if IGNORE_SEGMENT in tokens:
        return None
    words = []
    for token in tokens:
        if token.lower() == "<unk>":
            if unk == "drop_utterance":
                return None
            continue
        if _MARKER.match(token):
            continue
        if token.startswith("'") and words and token.strip("'"):
            words[-1] += token
        else:
            words.append(token)
    return letters_text(" ".join(words))


def _parse_stm(stm_path, talk, problems):
    """``[(line, speaker, start s, end s, raw text)]`` of one STM file."""
    segments = []
    try:
        with open(stm_path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        problems.add(stm_path, f"unreadable STM file ({err})")
        return segments
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(";;"):
            continue
        fields = line.split(None, 6)
        if len(fields) < 5:
            problems.add(stm_path, f"line {number}: expected '<talk> <channel> <speaker> "
                                   f"<start> <end> [<label>] <text>', got {line!r}")
            continue
        try:
            start, end = float(fields[3]), float(fields[4])
        except ValueError:
            problems.add(stm_path, f"line {number}: start/end {fields[3]!r} {fields[4]!r} "
                                   "are not numbers")
            continue
        if fields[0] != talk:
            problems.add(stm_path, f"line {number}: talk {fields[0]!r} is not the file's "
                                   f"talk {talk!r}")
            continue
        if not 0 <= start < end:
            problems.add(stm_path, f"line {number}: segment {start}-{end} s is empty or "
                                   "negative")
            continue
        rest = fields[5:]
        if rest and rest[0].startswith("<") and rest[0].endswith(">") and "," in rest[0]:
            rest = rest[1:]  # the <o,f0,male> label
        segments.append((number, fields[2], start, end, " ".join(rest)))
    return segments


def csv_name(split):
    """File name of a split's manifest.

    >>> csv_name("train-10h")
    'tedlium3-train-10h.csv'
    """
    return f"tedlium3-{split}.csv"


def segment_rows(segments, frames, wav_path, data_folder, sample_rate, problems, where):
    """Manifest rows of one recording's ``segments`` (dicts with ``ID``,
    ``start``/``end`` seconds, ``spk_id``, ``wrd``, ``line``) given its
    ``frames``; segments outside the file are problems (``where(seg)``
    names the metadata line) and left out."""
    wav = relative_to_root(wav_path, data_folder)
    rows = []
    for seg in segments:
        start = int(round(seg["start"] * sample_rate))
        stop = int(round(seg["end"] * sample_rate))
        if stop > frames:
            if stop - frames > END_TOLERANCE_S * sample_rate or start >= frames:
                problems.add(where(seg), f"segment {seg['start']:.2f}-{seg['end']:.2f} s "
                                         f"ends after its audio {wav_path} "
                                         f"({frames / sample_rate:.2f} s)")
                continue
            stop = frames
        rows.append({"ID": seg["ID"], "duration": format_seconds(stop - start, sample_rate),
                     "wav": wav, "start": start, "stop": stop, "spk_id": seg["spk_id"],
                     "wrd": seg["wrd"], "segments": format_segments([(wav, start, stop)])})
    return rows


def prepare_tedlium3(data_folder, save_folder, splits=DEFAULT_SPLITS, unk="drop_token",
                     subset_seed=0, skip_prep=False, skip_bad_files=False, num_workers=None,
                     progress=True, full_decode=DEFAULT_FULL_DECODE):
    """Write ``save_folder/tedlium3-<split>.csv`` for every split (see the
    module docstring).

    Arguments
    ---------
    data_folder : str
        The ``TEDLIUM_release-3`` folder (holds ``legacy/``).
    save_folder : str
        Where the CSVs go.
    splits : sequence of str
        ``train``, ``dev``, ``test`` and subsets ``train-<N>h`` / ``-<N>min``.
    unk : str
        ``"drop_token"`` (remove ``<unk>``) or ``"drop_utterance"``.
    subset_seed : int
        Seed of the order in which subsets take talks.
    skip_prep, skip_bad_files, num_workers, progress, full_decode
        As in :func:`data_prep.librispeech.prepare_librispeech`.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``)

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_ext.io.data import DataPreparationError
    >>> try:
    ...     prepare_tedlium3("/no/such/TEDLIUM_release-3", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the TEDLIUM_release-3 folder, which holds legacy/train/, legacy/dev/, legacy/test/)
    """
    if skip_prep:
        logger.info("TED-LIUM 3 preparation skipped (skip_prep=True)")
        return None
    splits = [splits] if isinstance(splits, str) else list(splits)
    if not splits:
        raise ValueError("prepare_tedlium3: no split given")
    parsed = {s: parse_subset(s) for s in splits}
    if unk not in UNK_POLICIES:
        raise ValueError(f"unk must be one of {UNK_POLICIES}, got {unk!r}")
    data_folder = os.path.abspath(data_folder)
    outputs = {s: csv_name(s) for s in splits}
    options = {"data_folder": data_folder, "unk": unk, "subset_seed": int(subset_seed),
               "skip_bad_files": bool(skip_bad_files), "version": PREP_VERSION}

    def collect(todo, problems):
        hint = ("pass the TEDLIUM_release-3 folder, which holds legacy/train/, legacy/dev/, "
                "legacy/test/")
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        talks = {}  # base split -> [(talk, sph path, [segment])]
        dropped = Counter()
        for base in dict.fromkeys(parsed[k][0] for k in todo):
            split_dir = os.path.join(data_folder, "legacy", base)
            sph_dir, stm_dir = os.path.join(split_dir, "sph"), os.path.join(split_dir, "stm")
            missing = [d for d in (sph_dir, stm_dir) if not os.path.isdir(d)]
            for folder in missing:
                what = "folder does not exist (expected legacy/<split>/{sph,stm}/)"
                if os.path.isdir(os.path.join(data_folder, base)):
                    what += (f"; data_folder looks like the legacy folder itself: pass its "
                             f"parent {os.path.dirname(data_folder)}")
                problems.add(folder, what, fatal=True)
            if missing:
                continue
            stms = {n[:-4] for n in os.listdir(stm_dir) if n.endswith(".stm")}
            sphs = {n[:-4] for n in os.listdir(sph_dir) if n.endswith(".sph")}
            if not stms:
                problems.add(stm_dir, "no .stm files", fatal=True)
            for talk in sorted(sphs - stms):
                problems.add(os.path.join(sph_dir, talk + ".sph"),
                             f"no transcript: {talk}.stm is missing from {stm_dir}")
            talks[base] = []
            for talk in sorted(stms):
                stm_path = os.path.join(stm_dir, talk + ".stm")
                sph_path = os.path.join(sph_dir, talk + ".sph")
                if talk not in sphs:
                    problems.add(sph_path, f"transcript {stm_path} has no audio file")
                    continue
                what = sphere_problem(sph_path, channels=1)
                if what:
                    problems.add(sph_path, what)
                    continue
                segments, ids = [], {}
                for line, speaker, start, end, raw in _parse_stm(stm_path, talk, problems):
                    tokens = raw.split()
                    if IGNORE_SEGMENT in tokens:
                        dropped[IGNORE_SEGMENT] += 1
                        continue
                    if unk == "drop_utterance" and "<unk>" in raw.lower().split():
                        dropped["<unk> utterance"] += 1
                        continue
                    text = tedlium_text(raw, unk)
                    if text is None:
                        problems.add(stm_path, f"line {line}: transcript {raw!r} holds "
                                               "letters with no A-Z spelling")
                        continue
                    if not text:
                        dropped["empty after normalisation"] += 1
                        continue
                    uid = f"{talk}-{int(round(start * 100)):07d}-{int(round(end * 100)):07d}"
                    if uid in ids:
                        problems.add(stm_path, f"line {line}: segment {uid} also on line "
                                               f"{ids[uid]}")
                        continue
                    ids[uid] = line
                    segments.append({"ID": uid, "start": start, "end": end, "line": line,
                                     "spk_id": speaker, "wrd": text, "stm": stm_path})
                talks[base].append((talk, sph_path, segments))
        if dropped:
            logger.info("TED-LIUM 3: segments left out: %s", dict(dropped))
        paths = [sph for items in talks.values() for _, sph, _ in items]

        def build(scan, problems):
            bad = problems.bad_paths()
            rows = {}
            for base, items in talks.items():
                rows[base] = []
                for talk, sph, segments in items:
                    if sph in bad or sph not in scan.frames:
                        continue
                    rows[base] += segment_rows(
                        segments, scan.frames[sph], sph, data_folder, SAMPLE_RATE, problems,
                        lambda seg: f"{seg['stm']} line {seg['line']}")
            tables = {}
            for key in todo:
                base, seconds = parsed[key]
                chosen = rows[base]
                if seconds is not None:
                    chosen = subset_rows(chosen, lambda r: r["ID"].rsplit("-", 2)[0], seconds,
                                         subset_seed, f"TED-LIUM 3 {key}")
                tables[key] = (sorted(chosen, key=lambda r: r["ID"]), CSV_COLUMNS)
            return tables

        return paths, build

    return run_preparation("tedlium3", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, SAMPLE_RATE, progress,
                           what="TED-LIUM 3 preparation", full_decode=full_decode)


def main(argv=None):
    parser = cli_parser("tedlium3",
                        "Write SpeechBrain CSVs (ID,duration,wav,start,stop,spk_id,wrd,"
                        "segments) for TED-LIUM 3 (legacy split).",
                        "the TEDLIUM_release-3 folder (holds legacy/)")
    parser.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS),
                        help="train, dev, test and subsets such as train-10h, train-1h")
    parser.add_argument("--unk", choices=UNK_POLICIES, default="drop_token",
                        help="remove <unk> tokens, or leave out their segments")
    parser.add_argument("--subset_seed", type=int, default=0)
    return run_cli(parser, argv, prepare_tedlium3, "leave out bad talks instead of stopping",
                   decode_options=True)


if __name__ == "__main__":
    sys.exit(main())
