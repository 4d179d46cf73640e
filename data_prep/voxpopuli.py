"""VoxPopuli (transcribed ASR data) preparation for letter CTC (paper 002,
Table 5 "VP"; English by default).

Input layout (what ``python -m voxpopuli.get_asr_data --root ROOT --lang en``
writes; ``data_folder`` is ``ROOT``, the folder holding ``transcribed_data/``)::

    data_folder/transcribed_data/en/<year>/<id>.ogg       16 kHz mono, one utterance each
    data_folder/transcribed_data/en/asr_{train,dev,test}.tsv
        id raw_text normalized_text speaker_id split gender is_gold_transcript accent

The TSVs are tab separated and read unquoted (``csv.QUOTE_NONE``: a ``"``
is part of the text); ``<year>`` is the first four characters of ``id``
(``20180612-0900-PLENARY-7-en_20180612-10:31:46_5`` -> ``2018``). Only
``id``, ``normalized_text`` and ``speaker_id`` are required.

Output: ``save_folder/voxpopuli-<lang>-<split>.csv`` with the LibriSpeech
columns ``ID,duration,wav,spk_id,wrd``: every clip is one utterance, so no
segment columns; ``ID`` is the clip id, ``wav`` ``$data_root/transcribed_data/
en/<year>/<id>.ogg`` (``replacements={"data_root": data_folder}``),
``spk_id`` the ``speaker_id``, ``wrd`` ``normalized_text`` through
``data_prep.tedlium3.letters_text`` (upper case, hyphens and punctuation to
word breaks, accents stripped, digits spelled out; a text with a letter
that has no A-Z spelling is a problem). A clip with an empty text is left
out (counted in the log). ``recipes/finetune`` style datasets read these
manifests as they are.

Splits: ``train``, ``dev``, ``test`` and training subsets ``train-<N>h`` /
``-<N>min`` (default ``train-10h``). A subset is made of whole *speeches*
(a clip id without its final ``_<n>``: one speaker's turn in one session),
taken in the fixed pseudo-random order of
``data_prep.tedlium3.select_units`` until it holds at least N hours (paper
002 does not say how its 10 h were drawn).

Audio: Ogg Vorbis, read by ``soundfile`` (libsndfile >= 1.0.29); every clip
is checked to be 16 kHz mono (``sample_rate``). Bad inputs follow
``data_prep.problems``.

Command line::

    python -m data_prep.voxpopuli --data_folder /corpora/voxpopuli \\
        --save_folder results/prep/voxpopuli --splits train-10h dev test
"""
import csv
import logging
import os
import sys
from collections import Counter

from speechbrain_ext.io.data import SAMPLE_RATE

from .audio_scan import DEFAULT_FULL_DECODE
from .cli import cli_parser, run_cli
from .manifests import format_seconds, read_table, relative_to_root
from .problems import check_data_folder
from .runner import run_preparation
from .tedlium3 import letters_text, parse_subset, subset_rows

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id", "wrd"]
METADATA_COLUMNS = ["id", "normalized_text", "speaker_id"]
SPLITS = ("train", "dev", "test")
DEFAULT_SPLITS = ("train-10h", "dev", "test")


def speech_of(clip_id):
    """The speech a clip belongs to (its id without the final ``_<n>``).

    >>> speech_of("20180612-0900-PLENARY-7-en_20180612-10:31:46_5")
    '20180612-0900-PLENARY-7-en_20180612-10:31:46'
    """
    return clip_id.rsplit("_", 1)[0]


def csv_name(split, language="en"):
    """File name of a split's manifest.

    >>> csv_name("train-10h")
    'voxpopuli-en-train-10h.csv'
    """
    return f"voxpopuli-{language}-{split}.csv"


def prepare_voxpopuli(data_folder, save_folder, splits=DEFAULT_SPLITS, language="en",
                      subset_seed=0, skip_prep=False, skip_bad_files=False, num_workers=None,
                      sample_rate=SAMPLE_RATE, progress=True, full_decode=DEFAULT_FULL_DECODE):
    """Write ``save_folder/voxpopuli-<language>-<split>.csv`` for every split
    (see the module docstring).

    Arguments
    ---------
    data_folder : str
        The VoxPopuli root (holds ``transcribed_data/<language>/``).
    save_folder : str
        Where the CSVs go.
    splits : sequence of str
        ``train``, ``dev``, ``test`` and subsets such as ``train-10h``.
    language : str
        Language folder (``en``).
    subset_seed : int
        Seed of the order in which subsets take speeches.
    sample_rate : int
        Expected sample rate of every clip (VoxPopuli: 16000).
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
    ...     prepare_voxpopuli("/no/such/voxpopuli", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the VoxPopuli root, which holds transcribed_data/en/)
    """
    if skip_prep:
        logger.info("VoxPopuli preparation skipped (skip_prep=True)")
        return None
    splits = [splits] if isinstance(splits, str) else list(splits)
    if not splits:
        raise ValueError("prepare_voxpopuli: no split given")
    parsed = {s: parse_subset(s, SPLITS) for s in splits}
    data_folder = os.path.abspath(data_folder)
    lang_dir = os.path.join(data_folder, "transcribed_data", language)
    outputs = {s: csv_name(s, language) for s in splits}
    options = {"data_folder": data_folder, "language": language, "sample_rate": sample_rate,
               "subset_seed": int(subset_seed), "skip_bad_files": bool(skip_bad_files),
               "version": PREP_VERSION}

    def collect(todo, problems):
        hint = f"pass the VoxPopuli root, which holds transcribed_data/{language}/"
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        if not os.path.isdir(lang_dir):
            what = "language folder does not exist"
            if os.path.isfile(os.path.join(data_folder, "asr_train.tsv")):
                what += (" (data_folder looks like the language folder itself: pass "
                         f"{os.path.dirname(os.path.dirname(data_folder))})")
            problems.add(lang_dir, what, fatal=True)
            return [], None
        entries, seen, dropped = {}, {}, Counter()
        for base in dict.fromkeys(parsed[k][0] for k in todo):
            tsv = os.path.join(lang_dir, f"asr_{base}.tsv")
            entries[base] = []
            for line, row in read_table(tsv, problems, METADATA_COLUMNS, delimiter="\t",
                                        what="split TSV", quoting=csv.QUOTE_NONE):
                clip = (row["id"] or "").strip()
                where = f"asr_{base}.tsv line {line}"
                if len(clip) < 4 or not clip[:4].isdigit():
                    problems.add(tsv, f"line {line}: id {clip!r} does not start with a year")
                    continue
                path = os.path.join(lang_dir, clip[:4], clip + ".ogg")
                raw = row["normalized_text"] or ""
                text = letters_text(raw)
                if path in seen:
                    problems.add(path, f"listed in {where} and in {seen[path]}")
                elif not os.path.isfile(path):
                    problems.add(path, f"listed in {where} but the audio file is missing")
                elif text is None:
                    problems.add(tsv, f"line {line}: normalized_text {raw!r} holds letters "
                                      "with no A-Z spelling")
                elif not text:
                    dropped[base] += 1
                else:
                    seen[path] = where
                    entries[base].append({
                        "ID": clip, "path": path, "wav": relative_to_root(path, data_folder),
                        "spk_id": (row["speaker_id"] or "").strip(), "wrd": text})
        if dropped:
            logger.info("VoxPopuli: clips with an empty normalized_text left out: %s",
                        dict(dropped))

        def build(scan, problems):
            bad = problems.bad_paths()
            rows = {base: [{**e, "duration": format_seconds(scan.frames[e["path"]], sample_rate)}
                           for e in items if e["path"] not in bad and e["path"] in scan.frames]
                    for base, items in entries.items()}
            tables = {}
            for key in todo:
                base, seconds = parsed[key]
                chosen = rows[base]
                if seconds is not None:
                    chosen = subset_rows(chosen, lambda r: speech_of(r["ID"]), seconds,
                                         subset_seed, f"VoxPopuli {key}")
                tables[key] = (sorted(chosen, key=lambda r: r["ID"]), CSV_COLUMNS)
            return tables

        return [e["path"] for items in entries.values() for e in items], build

    return run_preparation("voxpopuli", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="VoxPopuli preparation", full_decode=full_decode)


def main(argv=None):
    parser = cli_parser("voxpopuli",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,wrd) for the "
                        "transcribed VoxPopuli data of one language.",
                        "the VoxPopuli root (holds transcribed_data/<language>/)")
    parser.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS),
                        help="train, dev, test and subsets such as train-10h")
    parser.add_argument("--language", default="en")
    parser.add_argument("--subset_seed", type=int, default=0)
    parser.add_argument("--sample_rate", type=int, default=SAMPLE_RATE)
    return run_cli(parser, argv, prepare_voxpopuli, "leave out bad clips instead of stopping",
                   decode_options=True)


if __name__ == "__main__":
    sys.exit(main())
