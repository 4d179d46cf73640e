"""The 29-symbol letter vocabulary of character CTC fine-tuning (papers 000, 001).

Index 0 is the CTC blank, then ``A``-``Z``, the word separator and the
apostrophe. fairseq's ``dict.ltr.txt`` writes the word separator as ``|``;
here it is a space in text and ``|`` only in :attr:`LetterVocabulary.tokens`
(the names a flashlight/torchaudio lexicon decoder expects).

Transcripts are normalised like LibriSpeech's (upper case, runs of
whitespace collapsed, leading/trailing spaces dropped) before encoding; any
other character is an error that names the utterance, so a corpus with
digits or punctuation is caught before training rather than silently
mapped to something.

Example
-------
>>> vocab = LetterVocabulary()
>>> len(vocab)
29
>>> ids = vocab.encode("it's  ok", utterance_id="19-198-0001")
>>> ids
[9, 20, 28, 19, 27, 15, 11]
>>> vocab.decode(ids)
"IT'S OK"
>>> vocab.decode_ctc([0, 9, 9, 0, 20, 20, 0, 0, 20, 27])  # collapse repeats, drop blanks
'ITT '
"""
import string

BLANK = "<blank>"
WORD_SEPARATOR = " "
FAIRSEQ_WORD_SEPARATOR = "|"
LETTERS = tuple(string.ascii_uppercase)
APOSTROPHE = "'"

# The 39 ARPAbet phones without stress (CMUdict's set; paper 003's PR task).
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S "
           "SH T TH UH UW V W Y Z ZH").split()



class VocabularyError(ValueError):
    """A transcript or model output that does not fit the vocabulary (or a
    vocabulary that does not fit a checkpoint or a resumed run)."""


def collapse_repeats(ids):
    """``[a, a, b, b, a]`` -> ``[a, b, a]`` (CTC's merge step), as ints.

    >>> collapse_repeats([3, 3, 0, 3, 1, 1])
    [3, 0, 3, 1]
    """
    out = []
    for i in ids:
        i = int(i)
        if not out or out[-1] != i:
            out.append(i)
    return out


class LetterVocabulary:
    """Blank + A-Z + space + apostrophe, with encode/decode helpers.

    Arguments
    ---------
    symbols : sequence of str, optional
        Symbols after the blank, in index order; defaults to the papers'
        28 (``A``-``Z``, space, apostrophe). Every symbol is one character.
    """

    def __init__(self, symbols=None):
        symbols = tuple(symbols) if symbols is not None else LETTERS + (WORD_SEPARATOR, APOSTROPHE)
        if len(set(symbols)) != len(symbols) or any(len(s) != 1 for s in symbols):
            raise VocabularyError(f"symbols must be distinct single characters, got {symbols!r}")
        self.symbols = (BLANK,) + symbols
        self.blank_index = 0
        self.index = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.space_index = self.index.get(WORD_SEPARATOR)

    def __len__(self):
        return len(self.symbols)

    def __eq__(self, other):
        return isinstance(other, LetterVocabulary) and self.symbols == other.symbols

    def __repr__(self):
        return f"LetterVocabulary({len(self)} symbols)"

    @property
    def tokens(self):
        """Symbol names for a lexicon decoder: ``-`` for blank, ``|`` for space.

        >>> LetterVocabulary().tokens[:3], LetterVocabulary().tokens[-2:]
        (['-', 'A', 'B'], ['|', "'"])
        """
        names = {BLANK: "-", WORD_SEPARATOR: FAIRSEQ_WORD_SEPARATOR}
        return [names.get(s, s) for s in self.symbols]

    @staticmethod
    def normalize(text):
        """Upper case, whitespace collapsed to single spaces, stripped.

        >>> LetterVocabulary.normalize("  hello\\tWorld ")
        'HELLO WORLD'
        """
        return " ".join(str(text).split()).upper()

    def encode(self, text, utterance_id=None):
        """Indices ``[len(normalized text)]`` of a transcript.

        Raises :class:`VocabularyError` naming ``utterance_id`` for an empty
        transcript or a character outside the vocabulary.

        >>> LetterVocabulary().encode("a-b", utterance_id="utt7")
        Traceback (most recent call last):
        ...
        speechbrain_ext.downstream.vocabulary.VocabularyError: utterance utt7: character '-' (position 1 of 'A-B') is not in the 29-symbol letter vocabulary (A-Z, space, apostrophe)
        """
        where = f"utterance {utterance_id}" if utterance_id is not None else "transcript"
        normalized = self.normalize(text)
        if not normalized:
            raise VocabularyError(f"{where}: empty transcript ({text!r}); CTC needs at least one symbol")
        ids = []
        for position, char in enumerate(normalized):
            if char not in self.index or char == BLANK:
                raise VocabularyError(
                    f"{where}: character {char!r} (position {position} of {normalized!r}) is not in "
                    f"the {len(self)}-symbol letter vocabulary (A-Z, space, apostrophe)")
            ids.append(self.index[char])
        return ids

    def decode(self, ids):
        """Text of a sequence of indices (blanks dropped, no CTC collapsing)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self):
                raise VocabularyError(f"index {i} outside the {len(self)}-symbol vocabulary")
            if i != self.blank_index:
                out.append(self.symbols[i])
        return "".join(out)

    def decode_ctc(self, ids):
        """Text of a frame-level CTC path: merge repeats, then drop blanks.

        Leading/trailing/doubled spaces are kept; :meth:`to_words` cleans them.
        """
        return self.decode(collapse_repeats(ids))

    @staticmethod
    def to_words(text):
        """The words of a decoded text (empty pieces from extra spaces dropped).

        >>> LetterVocabulary.to_words(" HELLO  WORLD ")
        ['HELLO', 'WORLD']
        """
        return text.split()

    def check_output_size(self, size, where="the model"):
        """Raise a clear error when a classifier's output size is not ``len(self)``."""
        if int(size) != len(self):
            raise VocabularyError(
                f"{where} has {size} output classes but the letter vocabulary has {len(self)} "
                f"(blank, A-Z, space, apostrophe); it was fine-tuned with another vocabulary")
