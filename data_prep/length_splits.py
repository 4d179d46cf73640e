"""Fixed-length pre-training sets (paper 003, "Match to win", Fig. 1 top).

From a prepared LibriSpeech manifest (the pre-training set), build for each
target length ``L`` (``--lengths 1 5 10 15``; any other value is just another
parameter) a dataset whose pieces all last between ``L`` and
``L + max_spread`` seconds (``max_spread`` = 1 s), by truncating long
utterances and concatenating consecutive utterances of the same speaker and
chapter. No audio is rewritten: a piece is a list of ``(file, start, stop)``
segments, stored in the CSV column ``segments`` as
``$data_root/a.flac:START:STOP;$data_root/b.flac:START:STOP`` (START/STOP in
samples, STOP exclusive), and :func:`read_piece` returns its waveform.

Algorithm (per chapter, for one length):

1. The chapter's utterances, in utterance order, form one stream of ``N``
   samples. With ``lo = L`` and ``hi = L + max_spread`` (in samples), the
   stream is cut into ``n = N // lo`` pieces of equal length (to the sample).
   If ``N <= n * hi`` the pieces cover the whole chapter and last
   ``N / n`` samples, which lies in ``[lo, hi]`` (``n`` is the largest count
   that keeps pieces ``>= lo``, so pieces are as close to ``L`` as possible).
2. Otherwise (``n * hi < N < (n + 1) * lo``: no whole number of pieces in
   ``[lo, hi]`` can cover the chapter), the ``n`` pieces last ``hi`` and the
   remaining ``N - n * hi`` samples at the end of the chapter are dropped.
   This is the least any split with pieces in ``[lo, hi]`` that do not cross
   chapters can drop, and it only happens for chapters shorter than about
   ``L * (L + max_spread) / max_spread`` (4 minutes for 15 s).
3. A chapter shorter than ``L`` (``n = 0``) yields no piece and is dropped
   whole. Short utterances are never dropped on their own: an utterance
   shorter than ``L`` (e.g. the last one of a chapter) is simply joined to
   its neighbours in the stream.

So within a split every piece lies in ``[L, L + max_spread]`` (spread at most
``max_spread``, by construction), no piece crosses a speaker or chapter, and
the only speech lost is the remainders of step 2 and 3, which the statistics
report (``kept_fraction``, ``dropped_seconds``). It vanishes for chapters
longer than ``L * (L + max_spread) / max_spread`` and is small when most
chapters last several minutes, as in LibriSpeech. On the synthetic corpora:
with ~4 min chapters (``--hours-librispeech 5``) the 15 s split keeps
99.9 %, with the ~2 min chapters of the "mini" preset 98.8 % (1, 3, 5 s:
100 %; 10 s: 99.98 %). A warning is logged below 99 %.

Outputs in ``save_folder``: ``length_<L>s.csv`` (``ID,duration,segments,
spk_id``; load with ``DynamicItemDataset.from_csv(csv, replacements=
{"data_root": data_folder})`` and ``add_dynamic_item(read_piece,
takes="segments", provides="sig")``, or :func:`piece_dataset`),
``length_splits_stats.json`` (count, hours, min/mean/max seconds per length)
and ``length_splits.png`` (max/mean/min length per split, as Fig. 1 top).

Command line::

    python -m data_prep.length_splits --data_folder data/mini/LibriSpeech \\
        --save_folder results/prep --lengths 1 5 10 15 [--splits 960]
"""
import bisect
import hashlib
import json
import logging
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from speechbrain_ext.io.data import (DATA_ROOT_KEY, SAMPLE_RATE, AudioFileError,  # noqa: F401
                                     DataPreparationError, format_segments, parse_segments, read_csv,
                                     read_piece, resolve_data_root)

from .common import (DEFAULT_FULL_DECODE, DoneRecord, atomic_write_text, cli_parser, format_seconds,
                     run_cli, verify_audio_files, write_csv)

logger = logging.getLogger(__name__)

PREP_VERSION = 1
CSV_COLUMNS = ["ID", "duration", "segments", "spk_id"]
DEFAULT_LENGTHS = (1, 5, 10, 15)
STATS_FILE = "length_splits_stats.json"
FIGURE_FILE = "length_splits.png"


def length_tag(length):
    """Label of a length: ``5 -> '5s'``, ``2.5 -> '2.5s'``.

    >>> length_tag(5.0), length_tag(2.5)
    ('5s', '2.5s')
    """
    return f"{float(length):g}s"


def csv_name(length):
    """File name of the CSV for one length.

    >>> csv_name(10)
    'length_10s.csv'
    """
    return f"length_{length_tag(length)}.csv"


# ------------------------------------------------------------------ cutting
def cut_chapter(frames, lo, hi):
    """Cut one chapter into pieces of ``lo`` to ``hi`` samples.

    Arguments
    ---------
    frames : list of int
        Length in samples of each utterance of the chapter, in order.
    lo, hi : int
        Shortest and longest piece, in samples (``0 < lo <= hi``).

    Returns
    -------
    pieces : list of list of (int, int, int)
        Each piece as ``(utterance index, start, stop)`` parts, in order.
    dropped : int
        Samples of the chapter left out (see the module docstring).

    Example
    -------
    A 3 s and a 4 s utterance (at 10 Hz, to keep numbers small) cut into
    pieces of 2 to 3 s: three pieces of 2.33 s, the middle one spans both.

    >>> cut_chapter([30, 40], lo=20, hi=30)
    ([[(0, 0, 23)], [(0, 23, 30), (1, 0, 16)], [(1, 16, 40)]], 0)
    >>> cut_chapter([50], lo=20, hi=21)  # 2 pieces of 21, 8 samples dropped
    ([[(0, 0, 21)], [(0, 21, 42)]], 8)
    >>> cut_chapter([15], lo=20, hi=30)  # shorter than lo: dropped
    ([], 15)
    """
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}")
    total = sum(frames)
    count = total // lo
    if count == 0:
        return [], total
    covered = min(total, count * hi)
    offsets = [0]
    for n in frames:
        offsets.append(offsets[-1] + n)
    bounds = [k * covered // count for k in range(count + 1)]
    pieces = []
    for start, stop in zip(bounds, bounds[1:]):
        parts, pos = [], start
        index = bisect.bisect_right(offsets, pos) - 1
        while pos < stop:
            end = min(stop, offsets[index + 1])
            if end > pos:
                parts.append((index, pos - offsets[index], end - offsets[index]))
            pos = end
            index += 1
        pieces.append(parts)
    return pieces, total - covered


def _chapter_key(row):
    """``(speaker, chapter)`` and utterance number from a LibriSpeech ID."""
    parts = row["ID"].split("-")
    if len(parts) != 3 or not parts[2].isdigit():
        raise DataPreparationError(
            f"utterance id {row['ID']!r} is not SPEAKER-CHAPTER-UTTERANCE; "
            "length splits need a LibriSpeech-style manifest")
    return (parts[0], parts[1]), int(parts[2])


def make_pieces(rows, length, max_spread=1.0, sample_rate=SAMPLE_RATE):
    """Pieces of one length from manifest rows (``ID,duration,wav,spk_id``).

    Returns ``(pieces, info)``: ``pieces`` are CSV rows
    (``ID,duration,segments,spk_id``) and ``info`` counts what was dropped
    (``dropped_seconds``, ``dropped_chapters`` (wholly), ``cut_chapters``
    (partly)).

    >>> rows = [{"ID": "1-2-0000", "duration": "3.0", "wav": "a.flac", "spk_id": "1"},
    ...         {"ID": "1-2-0001", "duration": "4.0", "wav": "b.flac", "spk_id": "1"}]
    >>> pieces, info = make_pieces(rows, 2, sample_rate=10)
    >>> [(p["duration"], p["segments"]) for p in pieces]
    [('2.3', 'a.flac:0:23'), ('2.3', 'a.flac:23:30;b.flac:0:16'), ('2.4', 'b.flac:16:40')]
    >>> info["dropped_seconds"]
    0.0
    """
    lo = int(round(float(length) * sample_rate))
    hi = lo + int(round(float(max_spread) * sample_rate))
    if lo <= 0 or max_spread < 0:
        raise ValueError(f"length must be > 0 and max_spread >= 0, got {length}, {max_spread}")
    chapters = defaultdict(list)
    for row in rows:
        key, number = _chapter_key(row)
        frames = int(round(float(row["duration"]) * sample_rate))
        if frames > 0:
            chapters[key].append((number, row["ID"], row["wav"], frames,
                                  row.get("spk_id") or key[0]))
    tag = length_tag(length)
    pieces, dropped, dropped_chapters, cut_chapters = [], 0, 0, 0
    for (spk, chapter), utts in sorted(chapters.items()):
        utts.sort()
        chapter_pieces, lost = cut_chapter([u[3] for u in utts], lo, hi)
        dropped += lost
        dropped_chapters += not chapter_pieces
        cut_chapters += bool(lost and chapter_pieces)
        for k, parts in enumerate(chapter_pieces):
            frames = sum(stop - start for _, start, stop in parts)
            pieces.append({
                "ID": f"{spk}-{chapter}-{tag}-{k:04d}",
                "duration": format_seconds(frames, sample_rate),
                "segments": format_segments([(utts[i][2], a, b) for i, a, b in parts]),
                "spk_id": utts[0][4],
            })
    info = {"dropped_seconds": round(dropped / sample_rate, 4),
            "dropped_chapters": dropped_chapters, "cut_chapters": cut_chapters,
            "chapters": len(chapters)}
    return pieces, info


def manifest_frames(csv_path, data_folder, sample_rate=SAMPLE_RATE):
    """The audio files a prepared manifest reads: ``({path: frames}, exact)``.

    A length split (``segments`` column): each file's largest STOP, which
    the file must reach (``exact=False``: a chapter's dropped remainder
    may end before the file does). A LibriSpeech-style manifest (``wav``
    and ``duration``): each file's length to the sample (``exact=True``).
    ``$data_root`` is replaced by ``data_folder``.

    >>> import tempfile, os
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
    header). ``full_decode`` as in ``data_prep.common.scan_audio`` (default
    False: headers and ends only).

    Returns the ``ScanResult`` of the files; raises one
    :class:`DataPreparationError` naming the first ``max_listed`` damaged
    files and their count (all in ``err.problems``).

    >>> import numpy as np, soundfile, tempfile, os
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


# ------------------------------------------------------------ statistics
def split_stats(pieces, source_seconds=None):
    """count / hours / min / mean / max seconds of a list of pieces (rows
    with a ``duration``), and the fraction of ``source_seconds`` kept.

    >>> split_stats([{"duration": "1.5"}, {"duration": "2.5"}], source_seconds=4.0)
    {'count': 2, 'seconds': 4.0, 'hours': 0.0011, 'min_s': 1.5, 'mean_s': 2.0, 'max_s': 2.5, 'spread_s': 1.0, 'kept_fraction': 1.0}
    """
    secs = np.array([float(p["duration"]) for p in pieces] or [0.0])
    stats = {"count": len(pieces), "seconds": round(float(secs.sum()), 3),
             "hours": round(float(secs.sum()) / 3600, 4),
             "min_s": round(float(secs.min()), 4), "mean_s": round(float(secs.mean()), 4),
             "max_s": round(float(secs.max()), 4),
             "spread_s": round(float(secs.max() - secs.min()), 4)}
    if source_seconds:
        stats["kept_fraction"] = round(float(secs.sum()) / source_seconds, 5)
    return stats


def plot_stats(stats, path):
    """Max / mean / min piece length per split (paper 003, Fig. 1 top)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tags = list(stats)
    x = np.arange(len(tags))
    mins = [stats[t]["min_s"] for t in tags]
    means = [stats[t]["mean_s"] for t in tags]
    maxs = [stats[t]["max_s"] for t in tags]
    fig = Figure(figsize=(max(4.0, 1.3 * len(tags) + 1.5), 3.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.vlines(x, mins, maxs, color="0.6", linewidth=6, zorder=1)
    ax.scatter(x, maxs, marker="_", s=400, color="tab:red", label="max", zorder=2)
    ax.scatter(x, means, marker="o", s=30, color="tab:blue", label="mean", zorder=3)
    ax.scatter(x, mins, marker="_", s=400, color="tab:green", label="min", zorder=2)
    for xi, mean in zip(x, means):
        ax.annotate(f"{mean:.1f}s", (xi, mean), textcoords="offset points",
                    xytext=(12, -4), fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(tags)
    ax.set_xlim(-0.6, len(tags) - 0.4)
    ax.set_xlabel("pre-training split")
    ax.set_ylabel("sequence length (s)")
    ax.set_title("Length of the pieces per split (max / mean / min)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ----------------------------------------------------------- preparation
def _fingerprint(paths):
    digest = hashlib.sha1()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def prepare_length_splits(data_folder, save_folder, lengths=DEFAULT_LENGTHS,
                          splits=("train-clean-100",), source_csvs=None, max_spread=1.0,
                          sample_rate=SAMPLE_RATE, skip_prep=False, skip_bad_files=False,
                          num_workers=None, full_decode=DEFAULT_FULL_DECODE):
    """Write ``length_<L>s.csv`` for every ``L`` in ``lengths``, plus the
    statistics JSON and figure (see the module docstring).

    Arguments
    ---------
    data_folder : str
        The LibriSpeech folder (holding ``train-clean-100/`` ...).
    save_folder : str
        Where everything is written.
    lengths : sequence of float
        Target lengths in seconds; pieces last ``L`` to ``L + max_spread``.
    splits : sequence of str
        LibriSpeech splits forming the source set (``"960"`` for the paper's
        960 h); prepared with ``prepare_librispeech`` into ``save_folder``
        unless ``source_csvs`` is given.
    source_csvs : list of str, optional
        Already prepared manifests to use as the source instead.
    max_spread : float
        Largest difference between two pieces of one split, in seconds.
    skip_prep : bool
        Do nothing (SpeechBrain convention).
    skip_bad_files, num_workers, full_decode :
        Passed to ``prepare_librispeech`` (``full_decode``: which files are
        decoded to find NaN / Inf samples and damaged data; it is in that
        preparation's done record, so a full-decode run after a header-only
        one scans again). Unused with ``source_csvs``: check those with
        :func:`verify_manifest`.

    Returns
    -------
    dict with ``csv_files`` (``{"5s": path}``), ``stats`` (as written to
    ``length_splits_stats.json``) and ``prepared`` (lengths built now), or
    None with ``skip_prep``.
    """
    if skip_prep:
        logger.info("length splits skipped (skip_prep=True)")
        return None
    lengths = sorted({float(L) for L in lengths})
    if not lengths or min(lengths) <= 0:
        raise ValueError(f"lengths must be positive seconds, got {lengths}")
    save_folder = Path(save_folder)
    if source_csvs is None:
        from .librispeech import prepare_librispeech

        result = prepare_librispeech(data_folder, save_folder, splits,
                                     skip_bad_files=skip_bad_files,
                                     num_workers=num_workers, sample_rate=sample_rate,
                                     full_decode=full_decode)
        source_csvs = [result.csv_files[s] for s in result.csv_files]
    source_csvs = [os.path.abspath(p) for p in source_csvs]
    missing = [p for p in source_csvs if not os.path.isfile(p)]
    if missing:
        raise DataPreparationError(f"source manifest(s) not found: {missing}")
    rows = [row for path in source_csvs for row in read_csv(path)]
    source_seconds = sum(float(r["duration"]) for r in rows)
    source_chapters = {"-".join(r["ID"].split("-")[:2]) for r in rows}
    options = {"source_csvs": source_csvs, "source_sha1": _fingerprint(source_csvs),
               "max_spread": float(max_spread), "sample_rate": sample_rate,
               "version": PREP_VERSION}
    record = DoneRecord(save_folder, "length_splits")
    csv_files = {length_tag(L): str(save_folder / csv_name(L)) for L in lengths}
    prepared, pieces_of = [], {}
    for length in lengths:
        tag = length_tag(length)
        if record.is_done(tag, options, [csv_files[tag]]):
            continue
        pieces, info = make_pieces(rows, length, max_spread, sample_rate)
        if not pieces:
            raise DataPreparationError(
                f"no {tag} piece could be made from {source_csvs}: every chapter "
                f"is shorter than {length:g} s")
        record.forget([tag])
        write_csv(csv_files[tag], pieces, CSV_COLUMNS)
        record.mark_done(tag, options)
        pieces_of[tag] = pieces
        prepared.append(tag)
        logger.info("length split %s: %d pieces, %.2f h, %.1f s dropped -> %s", tag,
                    len(pieces), sum(float(p["duration"]) for p in pieces) / 3600,
                    info["dropped_seconds"], csv_files[tag])
    stats = {"source": {"csv": source_csvs, "count": len(rows),
                        "hours": round(source_seconds / 3600, 4)},
             "max_spread_s": float(max_spread), "splits": {}}
    for length in lengths:
        tag = length_tag(length)
        pieces = pieces_of.get(tag) or read_csv(csv_files[tag])
        kept_chapters = {p["ID"].rsplit("-", 2)[0] for p in pieces}
        summary = split_stats(pieces, source_seconds)
        stats["splits"][tag] = {
            "length_s": length, **summary,
            "dropped_seconds": round(source_seconds - summary["seconds"], 3),
            "dropped_chapters": len(source_chapters - kept_chapters)}
        kept = stats["splits"][tag]["kept_fraction"]
        if kept < 0.99:
            logger.warning("length split %s keeps only %.2f %% of the source: its "
                           "chapters are short for %g s pieces (see the module "
                           "docstring)", tag, 100 * kept, length)
    stats_path = save_folder / STATS_FILE
    figure_path = save_folder / FIGURE_FILE
    atomic_write_text(stats_path, json.dumps(stats, indent=1) + "\n")
    plot_stats({t: s for t, s in stats["splits"].items()}, figure_path)
    return {"csv_files": csv_files, "stats": stats, "prepared": prepared,
            "stats_file": str(stats_path), "figure": str(figure_path)}


def main(argv=None):
    parser = cli_parser("length_splits",
                        "Cut LibriSpeech into pre-training sets of fixed-length pieces "
                        "(paper 003).",
                        "the LibriSpeech folder (holding train-clean-100/ ...)",
                        save_folder_help=None)
    parser.add_argument("--lengths", nargs="+", type=float, default=list(DEFAULT_LENGTHS),
                        help="piece lengths in seconds (default: 1 5 10 15)")
    parser.add_argument("--splits", nargs="+", default=["train-clean-100"],
                        help="source LibriSpeech splits ('960' for the paper's 960 h)")
    parser.add_argument("--source_csv", nargs="+", default=None, dest="source_csvs",
                        metavar="SOURCE_CSV",
                        help="use these prepared manifests as the source instead")
    parser.add_argument("--max_spread", type=float, default=1.0,
                        help="longest minus shortest piece of a split, seconds")

    def report(result):
        print(json.dumps(result["stats"]["splits"], indent=1))
        print(f"statistics: {result['stats_file']}\nfigure: {result['figure']}")

    return run_cli(parser, argv, prepare_length_splits, skip_help=None, report=report,
                   decode_options=True)


if __name__ == "__main__":
    sys.exit(main())
