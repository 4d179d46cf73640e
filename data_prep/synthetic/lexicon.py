"""A LibriSpeech-style pronunciation lexicon (``WORD<TAB>PH PH ...``) from espeak.

espeak-ng's en-us phoneme mnemonics are mapped to the 39 ARPAbet phonemes of
the CMU / LibriSpeech lexicon, with stress digits on vowels (1 primary,
2 secondary, 0 unstressed).

Example
-------
>>> to_arpabet("h_@_l_'oU")
['HH', 'AH0', 'L', 'OW1']
"""
from .espeak import get_engine

_CONSONANTS = {
    "p": ["P"], "b": ["B"], "t": ["T"], "d": ["D"], "k": ["K"], "g": ["G"],
    "f": ["F"], "v": ["V"], "T": ["TH"], "D": ["DH"], "s": ["S"], "z": ["Z"],
    "S": ["SH"], "Z": ["ZH"], "h": ["HH"], "tS": ["CH"], "dZ": ["JH"],
    "m": ["M"], "n": ["N"], "N": ["NG"], "l": ["L"], "r": ["R"], "w": ["W"],
    "j": ["Y"], "t#": ["T"], "d#": ["D"], "?": ["T"], "n-": ["AH0", "N"],
    "m-": ["AH0", "M"], "l-": ["AH0", "L"], "x": ["K"], "W": ["W"], "C": ["HH"],
    "r-": ["R"], "t2": ["T"], "d2": ["D"], "z#": ["Z"], "s#": ["S"], "R": ["R"],
}
# Vowels: ARPAbet base (stress added) plus any trailing consonants.
_VOWELS = {
    "@": ["AH"], "@-": ["AH"], "@2": ["AH"], "@5": ["AH"], "a#": ["AH"], "V": ["AH"], "3": ["ER"],
    "3:": ["ER"], "@L": ["AH", "L"], "a": ["AE"], "aa": ["AE"], "A:": ["AA"],
    "A@": ["AA", "R"], "0": ["AA"], "O:": ["AO"], "O": ["AO"], "O2": ["AO"],
    "O@": ["AO", "R"], "o@": ["AO", "R"], "oU": ["OW"], "oU#": ["OW"], "E": ["EH"],
    "E2": ["EH"], "I": ["IH"], "I2": ["IH"], "I#": ["IH"], "i": ["IY"], "i:": ["IY"],
    "u:": ["UW"], "u": ["UW"], "U": ["UH"], "aI": ["AY"], "aU": ["AW"],
    "OI": ["OY"], "eI": ["EY"], "e@": ["EH", "R"], "i@": ["IH", "R"],
    "i@3": ["IH", "R"], "U@": ["UH", "R"], "aI@": ["AY", "ER"], "aI3": ["AY", "ER"],
    "aU@": ["AW", "ER"], "aU3": ["AW", "ER"], "A": ["AA"], "e": ["EH"], "IR": ["IH", "R"],
    "VR": ["ER"], "ER": ["EH", "R"], "Q": ["AA"],
}
ARPABET = sorted({p.rstrip("012") for v in list(_CONSONANTS.values()) + list(_VOWELS.values())
                  for p in v})


class UnknownPhonemeError(ValueError):
    """An espeak phoneme that has no ARPAbet mapping."""


def to_arpabet(mnemonics):
    """Convert espeak's ``_``-separated mnemonics of one word to ARPAbet."""
    out = []
    for token in mnemonics.replace(" ", "_").split("_"):
        token = token.rstrip(";")  # ';' marks palatalisation, which ARPAbet drops
        if not token:
            continue
        stress = "0"
        if token[0] in "',":
            stress = "1" if token[0] == "'" else "2"
            token = token[1:]
        if token in _CONSONANTS:
            out += _CONSONANTS[token]
        elif token in _VOWELS:
            first, *rest = _VOWELS[token]
            out += [first + stress] + [p if p in ARPABET else p + "0" for p in rest]
        else:
            raise UnknownPhonemeError(
                f"espeak phoneme {token!r} (in {mnemonics!r}) has no ARPAbet mapping"
            )
    # Vowels inside multi-phone mappings (e.g. ER of aI3) need a stress digit.
    return [p + "0" if p in ("AH", "ER") else p for p in out]


def pronounce(word, voice="en-us"):
    """ARPAbet phonemes of one word."""
    return to_arpabet(get_engine().phonemes(word.lower(), voice=voice, separator="_"))


def write_lexicon(path, words):
    """Write ``WORD<TAB>PHONEMES`` lines for ``words`` (upper-case)."""
    lines = [f"{w}\t{' '.join(pronounce(w))}" for w in sorted(set(words))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
