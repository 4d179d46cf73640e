"""Reading a prepared split back: which audio its manifest reads
(:func:`manifest_frames`), the check of that audio before training
(:func:`verify_manifest`), and the dataset of its pieces
(:func:`piece_dataset`).
"""
import os

from speechbrain_ext.io.data import (DATA_ROOT_KEY, SAMPLE_RATE, DataPreparationError, parse_segments,
                                     read_csv, read_piece, resolve_data_root)

from ..audio_scan import verify_audio_files


def manifest_frames(csv_path, data_folder, sample_rate=SAMPLE_RATE):
    """The audio files a prepared manifest reads: ``({path: frames}, exact)``.

    A length split (``segments`` column): each file's largest STOP, which
    the file must reach (``exact=False``: a chapter's dropped remainder
    may end before the file does). A LibriSpeech-style manifest (``wav``
    and ``duration``): each file's length to the sample (``exact=True``).
    ``$data_root`` is replaced by ``data_folder``.

    >>> import tempfile, os
    >>> from data_prep.length_splits.cutting import CSV_COLUMNS
    >>> from data_prep.manifests import write_csv
    >>> path = os.path.join(tempfile.mkdtemp(), "length_5s.csv")
    >>> _ = write_csv(path, [{"ID": "1-2-5s-0000", "duration": "0.1",
    ...                       "segments": "$data_root/a.flac:0:800;$data_root/b.flac:0:800"},
    ...                      {"ID": "1-2-5s-0001", "duration": "0.1",
    ...                       "segments": "$data_root/b.flac:800:2400"}], CSV_COLUMNS)
    >>> manifest_frames(path, "/data")
    ({'/data/a.flac': 800, '/data/b.flac': 2400}, False)
    """
    if not os.path.isfile(csv_path):
        raise DataPreparationError(f"{csv_path}: manifest not found (prepare it first)")
    rows = read_csv(csv_path)
    columns = set(rows[0]) if rows else set()
    frames = {}
    if "segments" in columns:
        for row in rows:
            for path, _, stop in parse_segments(resolve_data_root(row["segments"],
                                                                  data_folder)):
                frames[path] = max(stop, frames.get(path, 0))
        return frames, False
    if {"wav", "duration"} <= columns:
        for row in rows:
            frames[resolve_data_root(row["wav"], data_folder)] = int(
                round(float(row["duration"]) * sample_rate))
        return frames, True
    raise ValueError(f"{csv_path}: expected a 'segments' column (length split) or "
                     f"'wav' and 'duration' (LibriSpeech manifest), got {sorted(columns)}")


def verify_manifest(csv_path, data_folder, sample_rate=SAMPLE_RATE, num_workers=None,
                    progress=True, max_listed=20, full_decode=False):
    """Cheap check, before training, that the audio of a prepared manifest
    is still as it was prepared (see :func:`manifest_frames`).

    Every file's header is re-read in parallel (exists, mono, at
    ``sample_rate``, frame count as recorded) and its last frames up to
    what the manifest reads are decoded (a cut FLAC keeps its length in the
    header). ``full_decode`` as in ``data_prep.audio_scan.scan_audio`` (default
    False: headers and ends only).

    Returns the ``ScanResult`` of the files; raises one
    :class:`DataPreparationError` naming the first ``max_listed`` damaged
    files and their count (all in ``err.problems``).

    >>> import numpy as np, soundfile, tempfile, os
    >>> from data_prep.length_splits.cutting import CSV_COLUMNS
    >>> from data_prep.manifests import write_csv
    >>> folder = tempfile.mkdtemp()
    >>> soundfile.write(os.path.join(folder, "a.flac"), np.zeros(1600), 16000)
    >>> path = os.path.join(folder, "length_1s.csv")
    >>> _ = write_csv(path, [{"ID": "1-2-1s-0000", "duration": "0.1",
    ...                       "segments": "$data_root/a.flac:0:1600"}], CSV_COLUMNS)
    >>> list(verify_manifest(path, folder, progress=False).frames.values())
    [1600]
    """
    frames, exact = manifest_frames(csv_path, data_folder, sample_rate)
    return verify_audio_files(frames, sample_rate, exact=exact, full_decode=full_decode,
                              num_workers=num_workers, progress=progress,
                              max_listed=max_listed, what=f"audio check of {csv_path}")


def piece_dataset(csv_path, data_folder):
    """A ``DynamicItemDataset`` of a length CSV yielding ``id``, ``sig`` and
    ``duration`` (``data_folder``: the LibriSpeech folder)."""
    from speechbrain.dataio.dataset import DynamicItemDataset

    dataset = DynamicItemDataset.from_csv(csv_path,
                                          replacements={DATA_ROOT_KEY: str(data_folder)})
    dataset.add_dynamic_item(read_piece, takes="segments", provides="sig")
    dataset.set_output_keys(["id", "sig", "duration"])
    return dataset

