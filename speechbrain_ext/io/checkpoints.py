"""Which checkpoints of a save folder count: the one rule that the
checkpointer (``training.SafeCheckpointer``) and the readers
(``backbone.load_backbone``, ``downstream.results``) share.

A SpeechBrain checkpoint is a ``CKPT+*`` folder holding its meta file
``CKPT.yaml`` (``unixtime``, ``end-of-epoch``, the recipe's keys) and one
``<name>.ckpt`` per recoverable. SpeechBrain writes the meta file first, so
a folder counts only once the ``COMPLETE`` marker, written after every other
file, is there. A checkpoint found damaged is renamed ``damaged-CKPT+...``:
kept for inspection, no longer listed.

This module imports nothing from the rest of the package, so every module
can import it.
"""
import zipfile
from pathlib import Path

import yaml

MARKER = "COMPLETE"
# SpeechBrain's names (speechbrain.utils.checkpoints CKPT_PREFIX, METAFNAME),
# repeated so that readers need not import SpeechBrain
PREFIX = "CKPT+"
META_FILE = "CKPT.yaml"
DAMAGED_PREFIX = "damaged-"
# where SafeCheckpointer keeps a same-name checkpoint while replacing it
REPLACED_PREFIX = "replaced-"


def is_complete(folder):
    """Whether ``folder`` (str or Path) is a checkpoint folder whose save
    finished (it holds the ``COMPLETE`` marker)."""
    folder = Path(folder)
    return folder.is_dir() and (folder / MARKER).is_file()


def read_meta(folder):
    """The meta mapping of the checkpoint ``folder`` (its ``CKPT.yaml``,
    read as SpeechBrain does). A missing, unparsable or truncated file (not
    a mapping, or without ``unixtime`` / ``end-of-epoch``, which
    SpeechBrain needs) is a ``ValueError`` naming the file."""
    path = Path(folder) / META_FILE
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: unreadable meta file ({type(err).__name__}: {err})") from err
    if not isinstance(meta, dict) or "unixtime" not in meta or "end-of-epoch" not in meta:
        raise ValueError(f"{path}: damaged meta file (no 'unixtime' / 'end-of-epoch' mapping)")
    try:
        meta["unixtime"] = float(meta["unixtime"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: damaged meta file (unixtime {meta['unixtime']!r})") from err
    return meta


def checkpoint_time(folder):
    """When the checkpoint ``folder`` was saved (seconds since the epoch):
    its meta ``unixtime``, which SpeechBrain sorts by, or the folder's
    mtime when the meta file cannot be read."""
    try:
        return read_meta(folder)["unixtime"]
    except ValueError:
        return Path(folder).stat().st_mtime


def complete_checkpoints(save_folder):
    """The complete ``CKPT+*`` folders of ``save_folder``, newest first
    (by ``checkpoint_time``; the name breaks ties, so that every process
    sees one order). ``[]`` when the folder does not exist.

    Returns a list of ``Path``.

    >>> import tempfile
    >>> save = Path(tempfile.mkdtemp())
    >>> for name, unixtime, complete in (("CKPT+a", 1, True), ("CKPT+b", 3, True),
    ...                                  ("CKPT+c", 5, False)):  # c: an interrupted save
    ...     (save / name).mkdir()
    ...     _ = (save / name / META_FILE).write_text(f"unixtime: {unixtime}\\nend-of-epoch: true\\n")
    ...     if complete:
    ...         _ = (save / name / MARKER).write_text("")
    >>> [folder.name for folder in complete_checkpoints(save)]
    ['CKPT+b', 'CKPT+a']
    >>> latest_checkpoint(save).name
    'CKPT+b'
    """
    save_folder = Path(save_folder)
    if not save_folder.is_dir():
        return []
    folders = [f for f in save_folder.glob(PREFIX + "*") if is_complete(f)]
    return sorted(folders, key=lambda f: (checkpoint_time(f), f.name), reverse=True)


def latest_checkpoint(save_folder):
    """The newest complete checkpoint folder of ``save_folder`` (a ``Path``),
    or None when there is none."""
    folders = complete_checkpoints(save_folder)
    return folders[0] if folders else None


def move_aside(folder):
    """Rename the checkpoint ``folder`` to ``damaged-<name>`` (``+1``,
    ``+2``, ... appended when taken) beside it, so that it is kept but no
    longer listed; returns the new ``Path``. Run it on one process only."""
    folder = Path(folder)
    target = folder.with_name(DAMAGED_PREFIX + folder.name)
    suffix = 0
    while target.exists():
        suffix += 1
        target = folder.with_name(f"{DAMAGED_PREFIX}{folder.name}+{suffix}")
    folder.rename(target)
    return target


def zip_damage(path):
    """What is visibly wrong with the file ``path``, written by
    ``torch.save`` (a zip archive): None when it is a complete archive whose
    members match their CRCs, else a short reason (str). A file of another
    format (a text counter) gets a reason too: it cannot be verified."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if not head:
            return "empty file"
        if head != b"PK\x03\x04":
            return "not a torch zip archive: cannot be verified"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member: only run after a failed load
    except FileNotFoundError:
        return "missing file"
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as err:
        return f"truncated or corrupt zip archive ({type(err).__name__}: {err})"
    return None if bad is None else f"corrupt member {bad} (CRC mismatch)"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as the expected architecture."""
