"""Synthetic Fisher + Switchboard: two-channel 8 kHz telephone conversations
in the LDC layouts.

Layout (the LDC folders side by side)::

    fisher_swbd/
        swb1_d1/data/sw02001.sph  swb1_d2/data/...     Switchboard-1: NIST SPHERE,
                                                      2 channels, 8 kHz, 16-bit PCM
        swb_ms98_transcriptions/20/2001/sw2001A-ms98-a-trans.text   (and B)
            sw2001A-ms98-a-0001 0.000000 1.234567 [silence]
            sw2001A-ms98-a-0002 1.234567 3.456789 [noise] i think so
        fe_03_p1_sph1/audio/000/fe_03_00001.sph        Fisher: as Switchboard
        fe_03_p1_tran/data/trans/000/fe_03_00001.txt
            # fe_03_00001.sph
            <blank>
            0.61 3.48 A: [laughter] yeah (( i think )) so

A conversation is two speakers taking turns, each on their own channel
(side A = channel 1, side B = channel 2), with a low noise floor and a
little crosstalk on the other channel. Utterances are spoken at 16 kHz and
downsampled to 8 kHz. Switchboard's MS-State files tile each side with
``[silence]`` segments between the turns and mark noises (``[noise]``,
``[laughter]``, ``[laughter-yes]``); Fisher's mark ``[laughter]`` /
``[noise]`` and uncertain stretches ``(( ... ))``. Real Switchboard-1 ships
shorten-compressed u-law SPHERE; the stand-in is uncompressed PCM (what
``sph2pipe -f sph -p`` gives), since libsndfile reads no shorten.
"""
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from .core import Recording, rng_for, summarise, write_text
from .tedlium3 import SCRATCH, noise_floor, render_waveforms, write_sphere
from .text import SentenceGenerator
from .voices import make_speakers

TELEPHONE_RATE = 8000
SIZES = {
    "tiny": {"swbd": 3, "fisher": 3, "turns": [2, 3]},
    "mini": {"swbd": 4, "fisher": 4, "turns": [5, 5]},
}
SWBD_NUMBERS = (2001, 2005, 2006, 2008, 2010, 2012, 2015, 2018)


def _turn(rng, gen, corpus, index):
    """``(spoken, transcript)`` of one turn, with the corpus's markers."""
    words = gen.sentence(n_words=int(rng.integers(4, 9))).lower().split()
    spoken, written = list(words), list(words)
    if corpus == "swbd":
        if index == 1:
            spoken.insert(0, "yes")
            written.insert(0, "[laughter-yes]")
        if rng.random() < 0.35:
            written.insert(0, "[noise]")
        if rng.random() < 0.25:
            written.append("[laughter]")
    else:
        if rng.random() < 0.3:
            written.insert(0, "[laughter]")
        if rng.random() < 0.35 and len(written) > 3:
            a = int(rng.integers(0, len(written) - 2))
            written = written[:a] + ["(("] + written[a:a + 2] + ["))"] + written[a + 2:]
        if rng.random() < 0.2:
            written.append("[noise]")
    return " ".join(spoken), " ".join(written)


def _plan(seed, size):
    """Conversations: ``[(corpus, name, number, speakers, [(side, rec path, transcript)])]``."""
    convs, recordings = [], []
    for corpus in ("swbd", "fisher"):
        for i in range(size[corpus]):
            number = SWBD_NUMBERS[i] if corpus == "swbd" else i + 1
            name = f"sw0{number}" if corpus == "swbd" else f"fe_03_{number:05d}"
            rng = rng_for(seed, "fisher_swbd", name)
            speakers = make_speakers(rng, 2, prefix=f"{name}_", snr_db=(20.0, 35.0),
                                     sexes=list(("F", "M") if rng.random() < 0.5 else ("M", "F")))
            gen = SentenceGenerator(rng)
            side = "AB"[int(rng.integers(2))]
            turns = []
            for t in range(int(rng.integers(size["turns"][0], size["turns"][1] + 1))):
                spoken, written = _turn(rng, gen, corpus, t)
                path = f"{SCRATCH}/{name}/{t:03d}.wav"
                recordings.append(Recording(path=path, text=spoken,
                                            speaker=speakers["AB".index(side)]))
                turns.append((side, path, written))
                side = "B" if side == "A" else "A"
            convs.append((corpus, name, number, rng, turns))
    return convs, recordings


def _swbd_transcripts(root, number, turns, total):
    """Write the two MS-State ``-trans.text`` files of one conversation."""
    folder = root / "swb_ms98_transcriptions" / f"{number}"[:2] / f"{number}"
    for side in "AB":
        lines, clock, count = [], 0.0, 0

        def add(start, end, text):
            nonlocal count
            count += 1
            lines.append(f"sw{number}{side}-ms98-a-{count:04d} {start:.6f} {end:.6f} {text}")

        for turn_side, start, end, written in turns:
            if turn_side != side:
                continue
            if start > clock:
                add(clock, start, "[silence]")
            add(start, end, written)
            clock = end
        if total > clock:
            add(clock, total, "[silence]")
        write_text(folder / f"sw{number}{side}-ms98-a-trans.text", lines)


def build(root, seed, size, renderer):
    """Write ``fisher_swbd/`` into ``root`` (the corpus folder)."""
    root = Path(root)
    convs, recordings = _plan(seed, size)
    waves = render_waveforms(renderer, recordings, root, seed)
    durations, sides = {}, []
    for index, (corpus, name, number, rng, turns) in enumerate(convs):
        t = float(rng.uniform(0.4, 1.0))
        placed = []
        for side, path, written in turns:
            wav = resample_poly(waves[path], 1, 2).astype(np.float32)  # 16 -> 8 kHz
            first = int(round(t * TELEPHONE_RATE))
            start, end = first / TELEPHONE_RATE, (first + len(wav)) / TELEPHONE_RATE
            placed.append((side, first, wav, start, end, written))
            durations[f"{name}-{side}-{start:.2f}"] = end - start
            sides.append(f"{name}-{side}")
            t = end + float(rng.uniform(0.2, 0.8))
        total_frames = int(round((t + float(rng.uniform(0.3, 0.8))) * TELEPHONE_RATE))
        audio = noise_floor(rng, total_frames, level_db=-50.0, channels=2)
        for side, first, wav, *_ in placed:
            channel = "AB".index(side)
            audio[first:first + len(wav), channel] += wav
            audio[first:first + len(wav), 1 - channel] += 0.03 * wav  # crosstalk
        total = total_frames / TELEPHONE_RATE
        timed = [(side, start, end, written) for side, _, _, start, end, written in placed]
        if corpus == "swbd":
            write_sphere(root / f"swb1_d{1 + index // 2}" / "data" / f"{name}.sph", audio,
                         TELEPHONE_RATE, extra=[("database_id", "Switchboard-1"),
                                                ("conversation_id", str(number))])
            _swbd_transcripts(root, number, timed, total)
        else:
            write_sphere(root / "fe_03_p1_sph1" / "audio" / "000" / f"{name}.sph", audio,
                         TELEPHONE_RATE, extra=[("database_id", "fisher_english_p1")])
            lines = [f"# {name}.sph", ""]
            for side, start, end, written in timed:
                lines += [f"{start:.2f} {end:.2f} {side}: {written}", ""]
            write_text(root / "fe_03_p1_tran" / "data" / "trans" / "000" / f"{name}.txt", lines)
    stats = summarise(durations, sides)
    stats["conversations"] = {c: sum(1 for conv in convs if conv[0] == c)
                              for c in ("swbd", "fisher")}
    return stats
