"""What the lobes and recipes need from data handling: the ``$data_root``
key of every manifest, the errors of bad data, reading manifests and reading
a length-split piece (``segments``: ``FILE:START:STOP`` parts joined by
``;``). ``data_prep`` (the corpus preparations) builds on this module; the
package never imports ``data_prep``.

Example
-------
>>> resolve_data_root("$data_root/a.flac:0:160", "/corpora")
'/corpora/a.flac:0:160'
"""
import csv
import os

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


DATA_ROOT_KEY = "data_root"


class DataPreparationError(RuntimeError):
    """The input corpus cannot be prepared as it is.

    ``problems`` holds every :class:`Problem` found (the message lists them
    all)."""

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class AudioFileError(ValueError):
    """An audio file cannot be read as its manifest says (missing,
    undecodable, another sample rate, shorter, NaN / Inf samples): raised
    while training reads it. ``path`` names the file.

    Takes the message as its one positional argument, so a DataLoader
    worker re-raises it with its type."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path


def read_csv(path):
    """Rows of a manifest as a list of dicts (strings), in file order.

    ``$data_root`` is kept as is (see :func:`resolve_data_root`)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def resolve_data_root(value, data_root):
    """Replace ``$data_root`` in ``value`` by ``data_root``.

    >>> resolve_data_root("$data_root/a.flac", "/corpora")
    '/corpora/a.flac'
    """
    return value.replace(f"${DATA_ROOT_KEY}", str(data_root))


def format_segments(parts):
    """Segment string of a piece from ``(file, start, stop)`` parts.

    >>> format_segments([("$data_root/a.flac", 0, 160), ("$data_root/b.flac", 0, 80)])
    '$data_root/a.flac:0:160;$data_root/b.flac:0:80'
    """
    return ";".join(f"{path}:{int(start)}:{int(stop)}" for path, start, stop in parts)


def parse_segments(segments):
    """``[(file, start, stop)]`` of a segment string (the inverse of
    :func:`format_segments`; file names may contain ``:`` but not ``;``).

    >>> parse_segments("/d/a.flac:0:160;/d/b.flac:16:80")
    [('/d/a.flac', 0, 160), ('/d/b.flac', 16, 80)]
    """
    out = []
    for item in segments.split(";"):
        try:
            path, start, stop = item.rsplit(":", 2)
            out.append((path, int(start), int(stop)))
        except ValueError:
            raise ValueError(f"bad segment {item!r} in {segments!r}; expected "
                             "FILE:START:STOP (samples) joined by ';'") from None
    return out


# ------------------------------------------------------------------ reading
def _read_segment(path, start, stop, sample_rate):
    """Samples ``start:stop`` of one mono file (``stop`` None: to its end):
    float32, shape ``[stop - start]``.

    Raises :class:`AudioFileError` naming the file and what the manifest
    expected. The header checks cost nothing (the file is opened anyway)
    and the finite check ~6 us per 5 s piece."""
    expected = (f"expected a mono {sample_rate} Hz file"
                + (f" with at least {stop} frames" if stop is not None else ""))
    try:
        audio = sf.SoundFile(path)
    except Exception as err:  # libsndfile raises several types
        if not os.path.exists(path):
            raise AudioFileError(f"{path}: file does not exist ({expected}, as the "
                                 "manifest says)", path) from None
        raise AudioFileError(f"{path}: unreadable audio ({str(err).strip()}); {expected}",
                             path) from None
    with audio:
        if sample_rate is not None and audio.samplerate != sample_rate:
            raise AudioFileError(f"{path}: sample rate is {audio.samplerate} Hz, "
                                 f"expected {sample_rate} Hz", path)
        if audio.channels != 1:
            raise AudioFileError(f"{path}: {audio.channels} channels, expected mono", path)
        if stop is None:
            stop = audio.frames
        if audio.frames < stop:
            raise AudioFileError(f"{path}: {audio.frames} frames, but the manifest reads "
                                 f"samples {start}:{stop} (file shorter than the manifest "
                                 "says: changed after preparation?)", path)
        try:
            audio.seek(start)
            data = audio.read(stop - start, dtype="float32")
        except Exception as err:  # libsndfile raises several types
            raise AudioFileError(f"{path}: undecodable audio in samples {start}:{stop} "
                                 f"({str(err).strip()}); the file is damaged or truncated",
                                 path) from None
    if data.shape[0] != stop - start:
        raise AudioFileError(f"{path}: asked for samples {start}:{stop} but the file "
                             f"gave {data.shape[0]} (file shorter than the manifest says?)",
                             path)
    if not np.isfinite(data).all():
        bad = ~np.isfinite(data)
        first = start + int(np.flatnonzero(bad)[0])
        raise AudioFileError(f"{path}: {int(bad.sum())} NaN/Inf sample(s) in samples "
                             f"{start}:{stop}, the first at sample {first}; expected finite "
                             "audio (verify_manifest(..., full_decode=True) lists every "
                             "such file)", path)
    return data


def read_audio_file(path, sample_rate=SAMPLE_RATE):
    """A whole mono file as a float32 ``torch.Tensor`` ``[samples]``, with
    :func:`read_piece`'s checks (:class:`AudioFileError` naming the file
    when it is missing, undecodable, not mono at ``sample_rate`` or holds
    NaN / Inf samples).

    >>> import numpy as np, soundfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.flac")
    >>> soundfile.write(path, np.zeros(1600), 16000)
    >>> read_audio_file(path).shape
    torch.Size([1600])
    """
    import torch

    return torch.from_numpy(_read_segment(str(path), 0, None, sample_rate))


def read_piece(segments, data_root=None, sample_rate=SAMPLE_RATE):
    """Waveform of one piece: its segments read and concatenated.

    ``segments`` is the CSV's ``segments`` string, with ``$data_root``
    already replaced (``DynamicItemDataset.from_csv(..., replacements=
    {"data_root": folder})``) or replaced here by ``data_root``. Returns a
    float32 ``torch.Tensor`` of shape ``[samples]`` (as
    ``speechbrain.dataio.dataio.read_audio``); use it in a SpeechBrain
    pipeline with ``dataset.add_dynamic_item(read_piece, takes="segments",
    provides="sig")``.

    Raises :class:`~speechbrain_ext.io.data.AudioFileError` (a ``ValueError``)
    naming the file when one is missing, undecodable, not mono at
    ``sample_rate``, shorter than the manifest says or holds NaN / Inf
    samples in the piece.

    >>> import numpy as np, soundfile, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> soundfile.write(os.path.join(folder, "a.flac"), np.zeros(1600), 16000)
    >>> read_piece("$data_root/a.flac:0:800;$data_root/a.flac:1000:1600", folder).shape
    torch.Size([1400])
    """
    import torch

    if data_root is not None:
        segments = resolve_data_root(segments, data_root)
    if f"${DATA_ROOT_KEY}" in segments:
        raise ValueError(f"{segments!r} still holds ${DATA_ROOT_KEY}: load the CSV with "
                         f"replacements={{'{DATA_ROOT_KEY}': folder}} or pass data_root")
    chunks = [_read_segment(path, start, stop, sample_rate)
              for path, start, stop in parse_segments(segments)]
    return torch.from_numpy(np.concatenate(chunks) if len(chunks) > 1 else chunks[0])
