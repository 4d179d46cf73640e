"""Rendering recordings in parallel and writing corpora atomically.

A corpus is built in ``<out>/<name>.partial`` and renamed to ``<out>/<name>``
only once every file and metadata file is written, with a marker
(``.synthetic.json``) that records the options it was made with. So a
folder without the marker is never a corpus we finished: an interrupted
build is regenerated cleanly, and a folder the generator did not write is
refused instead of being overwritten.

Rendering can also hand back espeak's events of every recording
(``Renderer.render(..., return_events=True)`` or ``Renderer.iter_render``):
``(kind, name, sample)`` tuples as ``espeak.EspeakEngine.synthesize`` gives
them, with ``sample`` shifted to the written file's 16 kHz samples.
"""
import json
import multiprocessing
import os
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .espeak import get_engine
from .voices import SAMPLE_RATE, Speaker, apply_channel

GENERATOR_VERSION = 5  # 5: LibriSpeech phone alignments
MARKER = ".synthetic.json"
PARTIAL_SENTINEL = ".synthetic_partial"


class CorpusFolderError(RuntimeError):
    """The output folder cannot be used for a generated corpus."""


def rng_for(seed, *keys):
    """A numpy Generator determined by the seed and string keys only, so a
    recording's randomness does not depend on worker count or order."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(words)


@dataclass
class Recording:
    """One audio file to synthesise.

    ``path`` is relative to the corpus folder; its extension picks the format
    (.flac, .wav, .mp3). ``fixed_seconds`` pads/crops to an exact length
    (Speech Commands' 1 s clips). Prosody fields shift the speaker's voice for
    this recording (emotions)."""

    path: str
    text: str
    speaker: Speaker
    fixed_seconds: float = None
    pitch_shift: float = 0.0
    range_scale: float = 1.0
    rate_scale: float = 1.0
    volume_db: float = 0.0
    max_seconds: float = None
    extra: dict = field(default_factory=dict)


def synthesize_recording(rec, seed, return_events=False):
    """Return the float32 ``[samples]`` waveform of ``rec`` (deterministic);
    with ``return_events`` a pair ``(wav, events)``, the events of the final
    synthesis shifted by the silence before the speech (those past the end
    of a cropped ``fixed_seconds`` recording dropped)."""
    rng = rng_for(seed, rec.path)
    spk = rec.speaker
    rate = int(np.clip(spk.rate * rec.rate_scale * rng.uniform(0.93, 1.07), 80, 400))
    pitch = int(np.clip(spk.pitch + rec.pitch_shift + rng.normal(0, 3), 0, 99))
    prange = int(np.clip(spk.pitch_range * rec.range_scale, 0, 99))
    text = rec.text
    while True:
        speech, events = get_engine().synthesize(
            text, voice=spk.voice, rate=rate, pitch=pitch, pitch_range=prange,
            return_events=True,
        )
        too_long = rec.max_seconds and len(speech) > rec.max_seconds * SAMPLE_RATE
        if not too_long or len(text.split()) <= 1:
            break
        # Drop words until the utterance fits (rare; keeps the duration cap exact).
        words = text.split()
        keep = max(1, int(len(words) * rec.max_seconds * SAMPLE_RATE / len(speech)) - 1)
        text = " ".join(words[:keep])
        rec.text = text
    lead, tail = (int(s * SAMPLE_RATE) for s in rng.uniform(0.05, 0.3, size=2))
    if rec.fixed_seconds is not None:
        total = int(round(rec.fixed_seconds * SAMPLE_RATE))
        speech = speech[:total]
        wav = np.zeros(total, np.float32)
        start = int(rng.integers(0, total - len(speech) + 1))
        wav[start:start + len(speech)] = speech
    else:
        start = lead
        wav = np.concatenate([np.zeros(lead, np.float32), speech,
                              np.zeros(tail, np.float32)])
    wav = apply_channel(wav, spk.channel, rng)
    wav = wav * np.float32(10 ** (rec.volume_db / 20))
    if not return_events:
        return wav
    return wav, [(kind, name, sample + start) for kind, name, sample in events
                 if sample + start <= len(wav)]


def _write_audio(path, wav):
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    wav = np.clip(wav, -1.0, 1.0)
    if ext == ".mp3":
        sf.write(path, wav, SAMPLE_RATE, format="MP3")
    else:
        sf.write(path, wav, SAMPLE_RATE, subtype="PCM_16")


def _render_in_this_process(rec, root, seed, with_events):
    wav, events = synthesize_recording(rec, seed, return_events=True)
    _write_audio(Path(root) / rec.path, wav)
    return rec.path, rec.text, len(wav) / SAMPLE_RATE, events if with_events else None


def _render_one(args):
    """Render one recording in a child forked from this worker.

    espeak-ng's wave generator keeps state from one utterance to the next
    (and espeak_Initialize does not reset it), so a recording would depend on
    what the same process spoke before. The worker initialises its engine
    once and never speaks; each recording is spoken by a fork of it, so every
    recording starts from the same state whatever the order or worker count.
    """
    rec, root, seed, with_events = args
    get_engine()  # initialised once in the worker, before any fork
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        status = 0
        try:
            reply = {"ok": _render_in_this_process(rec, root, seed, with_events)}
        except BaseException as err:  # report any failure to the parent
            reply = {"error": f"{type(err).__name__}: {err}"}
            status = 1
        with os.fdopen(write_fd, "w") as pipe:
            json.dump(reply, pipe)
        os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    try:
        reply = json.loads(data)
    except ValueError:
        raise RuntimeError(f"synthesis of {rec.path} died without a result") from None
    if "error" in reply:
        raise RuntimeError(f"synthesis of {rec.path} failed: {reply['error']}")
    path, text, seconds, events = reply["ok"]
    if events is not None:
        events = [tuple(event) for event in events]
    return path, text, seconds, events


class Renderer:
    """Synthesises recordings with ``jobs`` worker processes."""

    def __init__(self, jobs=None):
        self.jobs = jobs or os.cpu_count() or 1
        self._pool = None

    def __enter__(self):
        # forkserver: workers start from a clean single-threaded process
        # (the caller may have torch threads running), and then fork per
        # recording (see _render_one).
        self._pool = multiprocessing.get_context("forkserver").Pool(self.jobs)
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def iter_render(self, recordings, root, seed, events=False):
        """Write every recording under ``root``, yielding ``(recording,
        seconds, events)`` in order as they are done (``events`` is None
        unless asked for), so a caller can reduce the events of a large
        corpus on the way. Updates each recording's ``text`` if it had to
        be shortened."""
        if self._pool is None:
            raise RuntimeError("use Renderer as a context manager")
        args = [(rec, str(root), seed, events) for rec in recordings]
        results = self._pool.imap(_render_one, args, chunksize=4)
        by_path = {rec.path: rec for rec in recordings}
        for path, text, seconds, rec_events in results:
            by_path[path].text = text
            yield by_path[path], seconds, rec_events

    def render(self, recordings, root, seed, return_events=False):
        """Write every recording under ``root``. Returns ``{path: seconds}``
        (with ``return_events`` also ``{path: events}``) and updates each
        recording's ``text`` if it had to be shortened."""
        durations, events = {}, {}
        for rec, seconds, rec_events in self.iter_render(
                recordings, root, seed, events=return_events):
            durations[rec.path] = seconds
            if return_events:
                events[rec.path] = rec_events
        return (durations, events) if return_events else durations


def write_text(path, lines):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _count_files(folder):
    return sum(len(files) for _, _, files in os.walk(folder))


def check_writable(out_root):
    """Create ``out_root`` if needed and fail clearly if it is not writable."""
    out_root = Path(out_root)
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        probe = out_root / ".write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise CorpusFolderError(
            f"output folder {out_root} is not writable ({err.strerror}); "
            "pass --out with a folder you can write to"
        ) from err


def read_marker(folder):
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def is_complete(folder, options):
    """True if ``folder`` holds a finished corpus made with ``options`` and
    none of its files has gone missing since."""
    info = read_marker(folder)
    options = json.loads(json.dumps(options))  # as the marker stores them (tuples -> lists)
    return (info is not None and info.get("options") == options
            and _count_files(folder) == info.get("files"))


def build_corpus(out_root, name, options, build_fn, log=print):
    """Build corpus ``name`` under ``out_root`` unless it is already there.

    ``build_fn(folder)`` writes the corpus into ``folder`` and returns a dict
    of statistics (hours, files, speakers ...). Returns the marker dict.
    """
    out_root = Path(out_root)
    final = out_root / name
    if is_complete(final, options):
        log(f"[synthetic] {name}: up to date, skipped")
        return read_marker(final)
    if final.exists():
        ours = read_marker(final) is not None or (final / PARTIAL_SENTINEL).exists()
        if not ours:
            raise CorpusFolderError(
                f"{final} exists but was not written by the synthetic-corpus "
                "generator (no .synthetic.json marker); refusing to overwrite "
                "it. Move it away or choose another --out folder."
            )
        log(f"[synthetic] {name}: incomplete or made with other options, regenerating")
    partial = out_root / (name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / PARTIAL_SENTINEL).write_text("")
    start = time.time()
    stats = build_fn(partial)
    (partial / PARTIAL_SENTINEL).unlink()
    info = {"name": name, "options": options, **stats,
            "build_seconds": round(time.time() - start, 1)}
    info["files"] = _count_files(partial) + 1  # + the marker itself
    (partial / MARKER).write_text(json.dumps(info, indent=1, sort_keys=True))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    log(f"[synthetic] {name}: {stats.get('hours', 0):.2f} h, "
        f"{stats.get('recordings', 0)} recordings, "
        f"{stats.get('speakers', 0)} speakers in {info['build_seconds']} s")
    return info


def summarise(durations, speakers):
    """Statistics dict for a marker from ``{path: seconds}``."""
    secs = np.array(list(durations.values()) or [0.0])
    return {"hours": round(float(secs.sum()) / 3600, 4),
            "recordings": len(durations),
            "speakers": len(set(speakers)),
            "min_seconds": round(float(secs.min()), 3),
            "max_seconds": round(float(secs.max()), 3)}
