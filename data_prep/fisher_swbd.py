"""Fisher + Switchboard preparation for letter CTC (paper 002, Table 5 "F+SB").

Input layout: the LDC distributions side by side in ``data_folder``::

    Switchboard-1 Release 2 (LDC97S62) and the MS-State (ISIP) transcripts:
    data_folder/swb1_d{1,2,3,4}/data/sw0NNNN.sph          two channels (sides A, B), 8 kHz
    data_folder/swb_ms98_transcriptions/NN/NNNN/swNNNN{A,B}-ms98-a-trans.text
        swNNNNA-ms98-a-0001 <start s> <end s> <words ...>
    Fisher English Training Speech Part 1 (LDC2004S13 / LDC2004T19; part 2 alike):
    data_folder/fe_03_p1_sph{1..7}/audio/NNN/fe_03_NNNNN.sph   two channels, 8 kHz
    data_folder/fe_03_p1_tran/data/trans/NNN/fe_03_NNNNN.txt
        # fe_03_NNNNN.sph            (comments and blank lines)
        <start s> <end s> A: <words ...>

``corpora`` picks ``swbd`` and/or ``fisher`` (default both; a corpus asked
for but absent is a fatal problem). Each *side* of a conversation (channel
1 = A, channel 2 = B) is one speaker's utterance stream; an utterance is a
transcript line of that side.

8 kHz telephone audio: the project's readers take mono 16 kHz
(``speechbrain_ext.io.data.read_piece`` and ``data_prep.audio_scan`` check
the rate and the channel count; the models run at 16 kHz), so the
preparation *converts*: every side that a requested split uses is decoded
(libsndfile: PCM, u-law or a-law SPHERE), resampled to 16 kHz
(``scipy.signal.resample_poly``, 8 -> 16 kHz = x2 with its anti-imaging
filter) and written once as a mono 16-bit FLAC,
``audio_folder/{swbd,fisher}/<conversation>-<side>.flac`` (default
``audio_folder``: ``save_folder/fisher_swbd_16k``). A later run reuses a
converted side whose header still matches. Only the sides a split needs are
converted: ``train-10h`` converts about 10 h of sides, not the 2,000+ h of
the corpora. Nothing is converted while a problem is pending (unless
``skip_bad_files``). Shorten-compressed SPHERE (``sample_coding
ulaw,embedded-shorten-v2.00``: Switchboard-1 as LDC ships it) cannot be
decoded by libsndfile; such a file is a problem whose message gives the
``sph2pipe`` command that decompresses it; for a whole disc set (``-p``
writes 16-bit linear PCM, twice the size of u-law)::

    for f in swb1_d*/data/*.sph; do sph2pipe -f sph -p "$f" "$f.pcm" && mv "$f.pcm" "$f"; done

Output ``save_folder/fisher_swbd-<split>.csv``, columns
``ID,duration,wav,start,stop,spk_id,wrd,segments`` as TED-LIUM 3
(``data_prep.tedlium3``): ``ID`` ``<conversation>-<side>-<start cs>-<end cs>``,
``wav`` the converted side ``$data_root/swbd/sw02001-A.flac`` -- **load with
``replacements={"data_root": audio_folder}``**, not the corpus folder --
``start``/``stop`` samples at 16 kHz, ``segments`` the same range for
``read_piece``, ``spk_id`` the side (``sw02001-A``; the corpora's caller
tables are not read), ``wrd`` the normalised transcript.

Transcripts (to the 29-symbol letter vocabulary, then
``data_prep.tedlium3.letters_text``): Switchboard (:func:`swbd_text`):
``[silence]``, ``[noise]``, ``[laughter]``, ``[vocalized-noise]`` and
``<b_aside>``-style tags removed; ``[laughter-WORD]`` -> ``WORD``;
mispronunciations ``[SAID/MEANT]`` -> ``MEANT``; partial words keep their
spoken part (``th[e]-`` -> ``TH``, ``-[a]bout`` -> ``BOUT``); ``_1``-style
suffixes dropped. Fisher (:func:`fisher_text`): ``[...]`` tags removed,
the ``((`` ``))`` of uncertain stretches removed (the words kept), partial
words ``th-`` -> ``TH``. Lines with nothing left (``[silence]``, pure noise)
are left out (counted in the log).

Splits: the corpora have no official dev/test among these folders (the
usual test set, Hub5'00, is another LDC corpus), so ``dev`` and ``test`` are
held-out conversations: per corpus, conversations in a fixed pseudo-random
order (SHA-1 of ``"heldout:<seed>:<conversation>"``), the first
``k = min(heldout_max, max(1, n // 100))`` are ``dev``, the next k
``test``, the rest ``train``. Training subsets ``train-<N>h`` /
``-<N>min`` (default ``train-10h``) take whole training *sides* of both
corpora in the order of ``data_prep.tedlium3.select_units`` until their
transcript time (end - start of the kept lines) reaches N hours.

Command line::

    python -m data_prep.fisher_swbd --data_folder /corpora/ldc \\
        --save_folder results/prep/fisher_swbd --splits train-10h dev test
"""
import glob
import logging
import math
import os
import re
import secrets
import sys
from collections import Counter

import numpy as np
import soundfile as sf

from speechbrain_ext.io.data import SAMPLE_RATE

from .audio_scan import DEFAULT_FULL_DECODE, default_workers
from .cli import cli_parser, run_cli
from .problems import check_data_folder
from .runner import run_preparation
from .tedlium3 import (hash_order, letters_text, parse_subset, segment_rows, select_units,
                       sphere_problem)

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "wrd", "segments"]
SPLITS = ("train", "dev", "test")
DEFAULT_SPLITS = ("train-10h", "dev", "test")
CORPORA = ("swbd", "fisher")
SIDES = ("A", "B")
HELDOUT_MAX = 20
AUDIO_FOLDER = "fisher_swbd_16k"
MIN_CONVERSIONS_PER_WORKER = 8

_SWBD_LINE = re.compile(r"^sw(\d{4})([AB])-ms98-a-(\d+)$")
_SWBD_FILE = re.compile(r"^sw(\d{4})([AB])-ms98-a-trans\.text$")
_FISHER_LINE = re.compile(r"^(\d+(?:\.\d*)?)\s+(\d+(?:\.\d*)?)\s+([AB])\d?:\s*(.*)$")


# ------------------------------------------------------------ transcripts
def swbd_text(text):
    """A Switchboard MS-State transcript in the letter vocabulary (see the
    module docstring); ``""`` when nothing is left, None when a letter has
    no A-Z spelling.

    >>> swbd_text("[noise] uh [laughter-yes] i th[ink]- think so [silence]")
    'UH YES I TH THINK SO'
    >>> swbd_text("the [bocket/bucket] -[a]bout it_1 <b_aside>")
    'THE BUCKET BOUT IT'
    >>> swbd_text("[silence]")
    ''
    """
    words = []
    for token in str(text).split():
        token = re.sub(r"^\[laughter-([^\]]+)\]$", r"\1", token)
        token = re.sub(r"\[[^\]/]*/([^\]]*)\]", r"\1", token)
        if re.fullmatch(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}", token):
            continue
        token = re.sub(r"\[[^\]]*\]", "", token)  # partial word: th[e]- -> th-
        token = re.sub(r"_\d+$", "", token)
        words.append(token)
    return letters_text(" ".join(words))


def fisher_text(text):
    """A Fisher transcript in the letter vocabulary (see the module
    docstring).

    >>> fisher_text("[laughter] (( i don't )) know th- the [noise]")
    "I DON'T KNOW TH THE"
    >>> fisher_text("(( ))")
    ''
    """
    text = str(text).replace("((", " ").replace("))", " ")
    return letters_text(" ".join(t for t in text.split()
                                 if not re.fullmatch(r"\[[^\]]*\]", t)))


# ------------------------------------------------------------ metadata
def _read_lines(path, problems):
    try:
        with open(path, encoding="utf-8", errors="strict") as handle:
            return handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        problems.add(path, f"unreadable transcript file ({err})")
        return None


def _utterance(conv, side, start, end, text, path, line, problems, dropped, ids):
    """One transcript line as an utterance dict, or None (a problem added,
    or nothing left to say: counted in ``dropped``). ``ids`` maps the
    side's utterance ids to their line (duplicates are problems)."""
    if not 0 <= start < end:
        problems.add(path, f"line {line}: segment {start}-{end} s is empty or negative")
        return None
    if text is None:
        problems.add(path, f"line {line}: transcript holds letters with no A-Z spelling")
        return None
    if not text:
        dropped["swbd" if conv.startswith("sw") else "fisher"] += 1
        return None
    uid = f"{conv}-{side}-{int(round(start * 100)):07d}-{int(round(end * 100)):07d}"
    if uid in ids:
        problems.add(path, f"line {line}: utterance {uid} (same side, start and end) also "
                           f"on line {ids[uid]}")
        return None
    ids[uid] = line
    return {"ID": uid, "start": start, "end": end, "wrd": text, "spk_id": f"{conv}-{side}",
            "where": f"{path} line {line}"}


def read_swbd(data_folder, problems, dropped):
    """``({conversation: sph path}, {conversation: {side: [utterance]}},
    {conversation: transcript path})`` of Switchboard-1; conversations are
    named as the audio (``sw02001``)."""
    audio = {}
    for path in sorted(glob.glob(os.path.join(data_folder, "swb1_d*", "data", "sw*.sph"))):
        conv = os.path.basename(path)[:-4]
        if not re.fullmatch(r"sw\d{5}", conv):
            continue
        if conv in audio:
            problems.add(path, f"conversation {conv} also at {audio[conv]}")
            continue
        audio[conv] = path
    trans_root = os.path.join(data_folder, "swb_ms98_transcriptions")
    sides, trans_paths = {}, {}
    for path in sorted(glob.glob(os.path.join(trans_root, "*", "*", "sw*-ms98-a-trans.text"))):
        match = _SWBD_FILE.match(os.path.basename(path))
        if not match:
            continue
        conv, side = f"sw0{match.group(1)}", match.group(2)
        lines = _read_lines(path, problems)
        if lines is None:
            continue
        trans_paths.setdefault(conv, path)
        utts, ids = sides.setdefault(conv, {}).setdefault(side, []), {}
        for number, line in enumerate(lines, 1):
            fields = line.split(None, 3)
            if not fields:
                continue
            id_match = _SWBD_LINE.match(fields[0]) if len(fields) >= 3 else None
            if not id_match or (id_match.group(1), id_match.group(2)) != match.groups():
                problems.add(path, f"line {number}: expected 'sw{match.group(1)}{side}-ms98-a-"
                                   f"NNNN <start> <end> <words>', got {line!r}")
                continue
            try:
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                problems.add(path, f"line {number}: start/end are not numbers: {line!r}")
                continue
            utt = _utterance(conv, side, start, end,
                             swbd_text(fields[3] if len(fields) > 3 else ""),
                             path, number, problems, dropped, ids)
            if utt:
                utts.append(utt)
    return audio, sides, trans_paths


def read_fisher(data_folder, problems, dropped):
    """As :func:`read_swbd`, for Fisher (parts 1 and 2); conversations are
    named ``fe_03_00001``."""
    audio = {}
    pattern = os.path.join(data_folder, "fe_03_p*_sph*", "audio", "*", "fe_03_*.sph")
    for path in sorted(glob.glob(pattern)):
        conv = os.path.basename(path)[:-4]
        if conv in audio:
            problems.add(path, f"conversation {conv} also at {audio[conv]}")
            continue
        audio[conv] = path
    sides, trans_paths = {}, {}
    pattern = os.path.join(data_folder, "fe_03_p*_tran", "data", "trans", "*", "fe_03_*.txt")
    for path in sorted(glob.glob(pattern)):
        conv = os.path.basename(path)[:-4]
        lines = _read_lines(path, problems)
        if lines is None:
            continue
        if conv in trans_paths:
            problems.add(path, f"conversation {conv} also transcribed in {trans_paths[conv]}")
            continue
        trans_paths[conv] = path
        conv_sides, ids = sides.setdefault(conv, {"A": [], "B": []}), {}
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _FISHER_LINE.match(line.strip())
            if not match:
                problems.add(path, f"line {number}: expected '<start> <end> A: <words>', "
                                   f"got {line!r}")
                continue
            utt = _utterance(conv, match.group(3), float(match.group(1)),
                             float(match.group(2)), fisher_text(match.group(4)), path, number,
                             problems, dropped, ids)
            if utt:
                conv_sides[match.group(3)].append(utt)
    return audio, sides, trans_paths


def heldout_splits(conversations, seed=0, heldout_max=HELDOUT_MAX):
    """``{conversation: "dev" / "test" / "train"}`` for one corpus: the first
    ``k = min(heldout_max, max(1, n // 100))`` conversations of the
    hash order are dev, the next k test.

    >>> splits = heldout_splits([f"c{i}" for i in range(250)])
    >>> sorted(Counter(splits.values()).items())
    [('dev', 2), ('test', 2), ('train', 246)]
    """
    order = hash_order(conversations, seed, salt="heldout:")
    k = min(int(heldout_max), max(1, len(order) // 100))
    return {c: "dev" if i < k else "test" if i < 2 * k else "train"
            for i, c in enumerate(order)}


# ------------------------------------------------------------ conversion
def converted_frames(frames, source_rate, sample_rate=SAMPLE_RATE):
    """Frames of a side after :func:`resample` (``resample_poly``'s length).

    >>> converted_frames(8000, 8000), converted_frames(11025, 11025, 16000)
    (16000, 16000)
    """
    g = math.gcd(int(source_rate), int(sample_rate))
    return -(-int(frames) * (sample_rate // g) // (source_rate // g))


def resample(signal, source_rate, sample_rate=SAMPLE_RATE):
    """``signal`` (float, ``[samples]``) at ``sample_rate``, polyphase."""
    if source_rate == sample_rate:
        return np.asarray(signal, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(source_rate), int(sample_rate))
    return resample_poly(signal, sample_rate // g, source_rate // g).astype(np.float32)


def _is_converted(path, frames):
    try:
        info = sf.info(path)
    except Exception:  # missing or unreadable: convert again
        return False
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames == frames


def convert_conversation(task):
    """Write the 16 kHz mono FLAC of the ``sides`` of one two-channel file.

    ``task`` is ``(sph, [(side, out path)])``; returns ``(sph, error or
    None, converted count)``. Sides already converted are kept."""
    sph, outputs = task
    try:
        info = sf.info(sph)
        todo = [(s, out) for s, out in outputs
                if not _is_converted(out, converted_frames(info.frames, info.samplerate))]
        if not todo:
            return sph, None, 0
        audio, rate = sf.read(sph, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types
        return sph, f"undecodable audio ({str(err).strip()})", 0
    if audio.shape[1] != len(SIDES):
        return sph, f"{audio.shape[1]} channel(s), expected 2 (sides A and B)", 0
    for side, out in todo:
        signal = np.clip(resample(audio[:, SIDES.index(side)], rate), -1.0, 32767 / 32768)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = f"{out}.{secrets.token_hex(4)}.tmp"
        try:
            sf.write(tmp, signal, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return sph, None, len(todo)


def _convert_all(tasks, num_workers):
    if num_workers is None:
        workers = min(default_workers(), len(tasks) // MIN_CONVERSIONS_PER_WORKER)
    else:
        workers = int(num_workers)
    if max(1, min(workers, len(tasks))) <= 1:
        return [convert_conversation(t) for t in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
        return list(pool.map(convert_conversation, tasks, chunksize=4))


# ------------------------------------------------------------ preparation
def csv_name(split):
    """File name of a split's manifest.

    >>> csv_name("train-10h")
    'fisher_swbd-train-10h.csv'
    """
    return f"fisher_swbd-{split}.csv"


def prepare_fisher_swbd(data_folder, save_folder, splits=DEFAULT_SPLITS, corpora=CORPORA,
                        audio_folder=None, seed=0, heldout_max=HELDOUT_MAX, skip_prep=False,
                        skip_bad_files=False, num_workers=None, progress=True,
                        full_decode=DEFAULT_FULL_DECODE):
    """Write ``save_folder/fisher_swbd-<split>.csv`` for every split and the
    16 kHz sides they read under ``audio_folder`` (see the module docstring).

    Arguments
    ---------
    data_folder : str
        The folder holding the LDC folders (``swb1_d1/``,
        ``swb_ms98_transcriptions/``, ``fe_03_p1_sph1/``, ``fe_03_p1_tran/`` ...).
    save_folder : str
        Where the CSVs go.
    splits : sequence of str
        ``train``, ``dev``, ``test`` and subsets such as ``train-10h``.
    corpora : sequence of str
        ``swbd`` and/or ``fisher``.
    audio_folder : str, optional
        Where the converted 16 kHz sides go; the manifests' ``$data_root``
        (default ``save_folder/fisher_swbd_16k``).
    seed : int
        Seed of the held-out conversations and of the subsets' order.
    heldout_max : int
        At most this many dev (and test) conversations per corpus.
    skip_prep, skip_bad_files, num_workers, progress, full_decode
        As in :func:`data_prep.librispeech.prepare_librispeech`;
        ``num_workers`` also sets the conversion processes.

    Returns
    -------
    data_prep.runner.PrepResult or None (with ``skip_prep``)

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_ext.io.data import DataPreparationError
    >>> try:
    ...     prepare_fisher_swbd("/no/such/ldc", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the folder holding swb1_d1/ ... swb_ms98_transcriptions/ and fe_03_p1_sph1/ ... fe_03_p1_tran/)
    """
    if skip_prep:
        logger.info("Fisher + Switchboard preparation skipped (skip_prep=True)")
        return None
    splits = [splits] if isinstance(splits, str) else list(splits)
    corpora = [corpora] if isinstance(corpora, str) else list(corpora)
    if not splits:
        raise ValueError("prepare_fisher_swbd: no split given")
    if not corpora or any(c not in CORPORA for c in corpora):
        raise ValueError(f"corpora must be some of {CORPORA}, got {corpora}")
    parsed = {s: parse_subset(s, SPLITS) for s in splits}
    data_folder = os.path.abspath(data_folder)
    audio_folder = os.path.abspath(audio_folder or os.path.join(save_folder, AUDIO_FOLDER))
    outputs = {s: csv_name(s) for s in splits}
    options = {"data_folder": data_folder, "audio_folder": audio_folder,
               "corpora": sorted(corpora), "seed": int(seed), "heldout_max": int(heldout_max),
               "sample_rate": SAMPLE_RATE, "skip_bad_files": bool(skip_bad_files),
               "version": PREP_VERSION}

    def collect(todo, problems):
        hint = ("pass the folder holding swb1_d1/ ... swb_ms98_transcriptions/ and "
                "fe_03_p1_sph1/ ... fe_03_p1_tran/")
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        dropped = Counter()
        audio, sides, split_of = {}, {}, {}
        for corpus in corpora:
            if corpus == "swbd":
                corpus_audio, corpus_sides, trans_paths = read_swbd(data_folder, problems,
                                                                    dropped)
                expected = {"audio": "swb1_d*/data/sw0NNNN.sph",
                            "transcripts": "swb_ms98_transcriptions/NN/NNNN/"
                                           "swNNNN{A,B}-ms98-a-trans.text"}
            else:
                corpus_audio, corpus_sides, trans_paths = read_fisher(data_folder, problems,
                                                                      dropped)
                expected = {"audio": "fe_03_p1_sph*/audio/NNN/fe_03_NNNNN.sph",
                            "transcripts": "fe_03_p1_tran/data/trans/NNN/fe_03_NNNNN.txt"}
            for kind, found in (("audio", corpus_audio), ("transcripts", corpus_sides)):
                if not found:
                    problems.add(os.path.join(data_folder, expected[kind]),
                                 f"no {corpus} {kind} found (expected {expected[kind]} under "
                                 "data_folder)", fatal=True)
            for conv in sorted(set(corpus_sides) - set(corpus_audio)):
                problems.add(trans_paths[conv], f"conversation {conv} has no audio file "
                                                f"(expected {expected['audio']})")
            for conv in sorted(set(corpus_audio) - set(corpus_sides)):
                problems.add(corpus_audio[conv], "no transcript for this conversation "
                                                 f"(expected {expected['transcripts']})")
            convs = sorted(set(corpus_audio) & set(corpus_sides))
            for conv in convs:
                audio[conv] = (corpus, corpus_audio[conv])
                sides[conv] = corpus_sides[conv]
            split_of.update(heldout_splits(convs, seed, heldout_max))
        if dropped:
            logger.info("Fisher + Switchboard: lines with no words left out: %s",
                        dict(dropped))
        if any(p.fatal for p in problems):
            return [], None
        # which sides each output reads
        side_seconds = {}
        for conv, conv_sides in sides.items():
            for side, utts in conv_sides.items():
                if utts:
                    side_seconds[(conv, side)] = sum(u["end"] - u["start"] for u in utts)
        chosen = {}
        for key in todo:
            base, seconds = parsed[key]
            pool = {k: v for k, v in side_seconds.items() if split_of[k[0]] == base}
            if seconds is None:
                chosen[key] = sorted(pool)
            else:
                units, total = select_units({f"{c}-{s}": v for (c, s), v in pool.items()},
                                            seconds, seed)
                if total < seconds:
                    logger.warning("Fisher + Switchboard %s: the training sides hold only "
                                   "%.2f h, less than asked for", key, total / 3600)
                logger.info("Fisher + Switchboard %s: %d of %d sides, %.3f h", key,
                            len(units), len(pool), total / 3600)
                chosen[key] = sorted(tuple(u.rsplit("-", 1)) for u in units)
        needed = {}
        for key in todo:
            for conv, side in chosen[key]:
                needed.setdefault(conv, set()).add(side)
        for conv in sorted(needed):
            what = sphere_problem(audio[conv][1], channels=2)
            if what:
                problems.add(audio[conv][1], what)
        if len(problems) and not skip_bad_files:
            problems.enforce(False, report_folder=save_folder)  # before converting anything
        bad = problems.bad_paths()

        def out_path(conv, side):
            return os.path.join(audio_folder, audio[conv][0], f"{conv}-{side}.flac")

        tasks = [(audio[c][1], [(s, out_path(c, s)) for s in sorted(needed[c])])
                 for c in sorted(needed) if audio[c][1] not in bad]
        converted = 0
        for sph, error, count in _convert_all(tasks, num_workers):
            converted += count
            if error:
                problems.add(sph, error)
        logger.info("Fisher + Switchboard: %d side(s) converted to 16 kHz in %s, %d reused",
                    converted, audio_folder,
                    sum(len(outs) for _, outs in tasks) - converted)
        bad = problems.bad_paths()
        paths = [out_path(c, s) for c in sorted(needed) if audio[c][1] not in bad
                 for s in sorted(needed[c])]

        def build(scan, problems):
            bad = problems.bad_paths()
            rows_of = {}
            tables = {}
            for key in todo:
                rows = []
                for conv, side in chosen[key]:
                    path = out_path(conv, side)
                    if audio[conv][1] in bad or path in bad or path not in scan.frames:
                        continue
                    if (conv, side) not in rows_of:
                        rows_of[(conv, side)] = segment_rows(
                            sides[conv][side], scan.frames[path], path, audio_folder,
                            SAMPLE_RATE, problems, lambda u: u["where"])
                    rows += rows_of[(conv, side)]
                tables[key] = (sorted(rows, key=lambda r: r["ID"]), CSV_COLUMNS)
            return tables

        return paths, build

    return run_preparation("fisher_swbd", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, SAMPLE_RATE, progress,
                           what="Fisher + Switchboard preparation", full_decode=full_decode)


def main(argv=None):
    parser = cli_parser("fisher_swbd",
                        "Write SpeechBrain CSVs (ID,duration,wav,start,stop,spk_id,wrd,"
                        "segments) for Fisher + Switchboard, converting the sides they read "
                        "to 16 kHz mono FLAC.",
                        "the folder holding the LDC folders (swb1_d1/, swb_ms98_"
                        "transcriptions/, fe_03_p1_sph1/, fe_03_p1_tran/ ...)")
    parser.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS),
                        help="train, dev, test and subsets such as train-10h")
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument("--audio_folder", default=None,
                        help="where the 16 kHz sides go (the manifests' $data_root; default "
                             f"<save_folder>/{AUDIO_FOLDER})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout_max", type=int, default=HELDOUT_MAX)
    return run_cli(parser, argv, prepare_fisher_swbd,
                   "leave out bad conversations instead of stopping", decode_options=True)


if __name__ == "__main__":
    sys.exit(main())
