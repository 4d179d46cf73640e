"""Fluent Speech Commands preparation for intent classification (IC).

Input layout (the corpus as distributed; ``data_folder`` is
``fluent_speech_commands_dataset``)::

    data_folder/wavs/speakers/<speakerId>/<utterance id>.wav
    data_folder/data/{train,valid,test}_data.csv
        ,path,speakerId,transcription,action,object,location

(the first, unnamed column is a row index; ``path`` is relative to
``data_folder``).

Output: ``save_folder/{train,valid,test}.csv`` with columns
``ID,duration,wav,spk_id,transcript,action,object,location,intent``. ``ID``
is the wav file's stem (unique in the corpus), ``spk_id`` the
``speakerId``, ``transcript`` the transcription as given (original case and
punctuation), ``action``/``object``/``location`` the three slots (SUPERB
predicts them with three heads) and ``intent`` =
``<action>_<object>_<location>`` (e.g. ``activate_lights_kitchen``,
``change language_none_none``: the 31 intents). The official splits have
disjoint speakers.

Bad inputs follow ``data_prep.problems``: a missing data folder or split CSV
is fatal; a CSV line whose audio is missing, an empty slot, a file listed
twice, an unreadable/empty file or one at another sample rate is listed
(nothing written), or left out with ``skip_bad_files=True``.

Command line::

    python -m data_prep.fluent_speech --data_folder data/mini/fluent_speech_commands_dataset \\
        --save_folder results/prep/fluent_speech
"""
import logging
import os
import sys

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError

from .cli import cli_parser, run_cli
from .manifests import read_table, relative_to_root
from .problems import check_data_folder
from .runner import collected_entries, run_preparation

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "wav", "spk_id", "transcript", "action", "object",
               "location", "intent"]
METADATA_COLUMNS = ["path", "speakerId", "transcription", "action", "object", "location"]
SPLITS = ("train", "valid", "test")
SLOTS = ("action", "object", "location")


def intent_of(action, obj, location):
    """The intent label of a slot triple.

    >>> intent_of("activate", "lights", "kitchen")
    'activate_lights_kitchen'
    """
    return f"{action}_{obj}_{location}"


def prepare_fluent_speech(data_folder, save_folder, splits=SPLITS, skip_prep=False,
                          skip_bad_files=False, num_workers=None, sample_rate=SAMPLE_RATE,
                          progress=True):
    """Write ``{train,valid,test}.csv`` (``ID,duration,wav,spk_id,transcript,
    action,object,location,intent``) for Fluent Speech Commands.

    Arguments
    ---------
    data_folder : str
        The ``fluent_speech_commands_dataset`` folder.
    save_folder : str
        Where the CSVs go.
    splits : sequence of str
        Some of ``train``, ``valid``, ``test``.
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
    ...     prepare_fluent_speech("/no/such/folder", tempfile.mkdtemp())
    ... except DataPreparationError as err:
    ...     print(err.problems[0].what)
    data folder does not exist (pass the fluent_speech_commands_dataset folder, which holds data/ and wavs/)
    """
    if skip_prep:
        logger.info("Fluent Speech Commands preparation skipped (skip_prep=True)")
        return None
    splits = [splits] if isinstance(splits, str) else list(splits)
    if not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"splits must be some of {SPLITS}, got {splits}")
    data_folder = os.path.abspath(data_folder)
    outputs = {s: f"{s}.csv" for s in splits}
    options = {"data_folder": data_folder, "sample_rate": sample_rate,
               "skip_bad_files": bool(skip_bad_files), "version": PREP_VERSION}

    def collect(todo, problems):
        hint = "pass the fluent_speech_commands_dataset folder, which holds data/ and wavs/"
        if not check_data_folder(data_folder, problems, hint):
            return [], None
        entries, seen = {s: [] for s in todo}, {}
        for split in todo:
            csv_path = os.path.join(data_folder, "data", f"{split}_data.csv")
            name = os.path.basename(csv_path)
            for line, row in read_table(csv_path, problems, METADATA_COLUMNS, what="split CSV"):
                rel = (row["path"] or "").strip().replace("\\", "/")
                if not rel:
                    problems.add(csv_path, f"line {line}: empty path")
                    continue
                path = os.path.join(data_folder, rel)
                where = f"{name} line {line}"
                slots = [(row[s] or "").strip() for s in SLOTS]
                if path in seen:
                    problems.add(path, f"listed in {where} and in {seen[path]}")
                elif not os.path.isfile(path):
                    problems.add(path, f"listed in {where} but the audio file is missing")
                elif not all(slots):
                    problems.add(path, f"empty action/object/location in {where}")
                else:
                    seen[path] = where
                    entries[split].append({
                        "ID": os.path.splitext(os.path.basename(rel))[0], "path": path,
                        "wav": relative_to_root(path, data_folder),
                        "spk_id": (row["speakerId"] or "").strip(),
                        "transcript": " ".join((row["transcription"] or "").split()),
                        **dict(zip(SLOTS, slots)), "intent": intent_of(*slots)})

        return collected_entries(entries, sample_rate, CSV_COLUMNS)

    return run_preparation("fluent_speech", save_folder, outputs, options, collect,
                           skip_bad_files, num_workers, sample_rate, progress,
                           what="Fluent Speech Commands preparation")


def main(argv=None):
    parser = cli_parser("fluent_speech",
                        "Write SpeechBrain CSVs (ID,duration,wav,spk_id,transcript,action,"
                        "object,location,intent) for Fluent Speech Commands.",
                        "the fluent_speech_commands_dataset folder")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    return run_cli(parser, argv, prepare_fluent_speech,
                   "leave out bad utterances instead of stopping")


if __name__ == "__main__":
    sys.exit(main())
