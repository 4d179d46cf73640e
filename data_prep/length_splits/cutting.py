"""Cutting a manifest into pieces of one length (see :mod:`data_prep.length_splits`).

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
"""
import bisect
from collections import defaultdict

from speechbrain_ext.io.data import SAMPLE_RATE, DataPreparationError, format_segments

from ..manifests import format_seconds

CSV_COLUMNS = ["ID", "duration", "segments", "spk_id"]


def length_tag(length):
    """Label of a length: ``5 -> '5s'``, ``2.5 -> '2.5s'``.

    >>> length_tag(5.0), length_tag(2.5)
    ('5s', '2.5s')
    """
    return f"{float(length):g}s"



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

