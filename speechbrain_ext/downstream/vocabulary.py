"""Token vocabularies of the CTC models: the blank (index 0) and the units of
one kind, on SpeechBrain's ``CTCTextEncoder`` (saved as its
``label_encoder.txt``).

A kind says how a transcript is cut into units (:func:`text_to_units`):

===================  =========================================  =======================
kind                 units                                      vocabulary
===================  =========================================  =======================
``letters``          A-Z, space, apostrophe (LibriSpeech text)  ``LetterVocabulary()``
``phonemes``         the 39 ARPAbet phonemes (``ARPABET``)      ``CTCVocabulary.phonemes()``
``characters``       Mandarin characters, punctuation dropped   from the transcripts
``slot_characters``  letters, spaces and whole slot tags (SF)   from the transcripts
===================  =========================================  =======================

:class:`CTCVocabulary` holds any kind; :class:`LetterVocabulary` is its
``letters`` kind, the 29-symbol vocabulary of character CTC fine-tuning
(papers 000, 001) and of the ASR task, with what a lexicon decoder needs.
fairseq's ``dict.ltr.txt`` writes the word separator as ``|``; here it is a
space in text and ``|`` only in :attr:`LetterVocabulary.tokens`.

Transcripts are normalised before encoding (letters: LibriSpeech's upper
case and single spaces); any unit outside the vocabulary is an error that
names the utterance, so a corpus with digits or punctuation is caught before
training rather than silently mapped to something.

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
>>> slots = CTCVocabulary.from_transcripts(["AB BA", "ABC"], "slot_characters")
>>> slots.labels
['<blank>', ' ', 'A', 'B', 'C']
>>> slots.encode("CAB"), slots.decode_ctc([0, 4, 4, 0, 2, 0, 2, 3])
([4, 2, 3], 'CAAB')
"""
import re
import string
import unicodedata
from pathlib import Path

from speechbrain.dataio.encoder import CTCTextEncoder

BLANK = "<blank>"
WORD_SEPARATOR = " "
FAIRSEQ_WORD_SEPARATOR = "|"
LETTERS = tuple(string.ascii_uppercase)
APOSTROPHE = "'"

# The 39 ARPAbet phones without stress (CMUdict's set; paper 003's PR task).
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S "
           "SH T TH UH UW V W Y Z ZH").split()

VOCABULARY_KINDS = ("letters", "phonemes", "characters", "slot_characters")
SLOT_TAG = re.compile(r"^</?[A-Za-z0-9_]+>$")
SLOT_TAG_SPLIT = re.compile(r"(</?[A-Za-z0-9_]+>)")  # re.split keeps the tags


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


def text_to_units(text, kind):
    """The CTC units of a transcript for a vocabulary kind.

    ``letters``: LibriSpeech normalisation (upper case, single spaces), one
    unit per character. ``phonemes``: blank-separated symbols. ``characters``
    (Mandarin): whitespace and punctuation dropped (Common Voice sentences
    end with ``。``, which nobody says), Latin letters upper-cased.
    ``slot_characters``: the words' characters and single spaces, every slot
    tag (``<minutes>``, ``</minutes>``) one unit.

    >>> text_to_units("it's ok", "letters")
    ['I', 'T', "'", 'S', ' ', 'O', 'K']
    >>> text_to_units("HH AH L OW", "phonemes")
    ['HH', 'AH', 'L', 'OW']
    >>> text_to_units("老张, 想去北京。", "characters")
    ['老', '张', '想', '去', '北', '京']
    >>> text_to_units("FOR <minutes> TEN </minutes>", "slot_characters")
    ['F', 'O', 'R', ' ', '<minutes>', ' ', 'T', 'E', 'N', ' ', '</minutes>']
    """
    if kind == "letters":
        return list(LetterVocabulary.normalize(text))
    if kind == "phonemes":
        return str(text).upper().split()
    if kind == "characters":
        text = unicodedata.normalize("NFKC", str(text)).upper()
        return [c for c in text if not c.isspace()
                and not unicodedata.category(c).startswith(("P", "S"))]
    if kind == "slot_characters":
        units = []
        for word in str(text).split():
            if units:
                units.append(WORD_SEPARATOR)
            # a tag glued to a word ("TEN</minutes>") is still one unit
            for piece in SLOT_TAG_SPLIT.split(word):
                units.extend([piece] if SLOT_TAG.match(piece) else list(piece.upper()))
        return units
    raise ValueError(f"unknown vocabulary kind {kind!r}; expected one of {VOCABULARY_KINDS}")


def units_to_text(units, kind):
    """Inverse of :func:`text_to_units` (up to normalisation).

    >>> units_to_text(['HH', 'AH'], "phonemes"), units_to_text(['A', ' ', 'B'], "letters")
    ('HH AH', 'A B')
    """
    if kind == "phonemes":
        return " ".join(units)
    return "".join(units)


class CTCVocabulary:
    """Blank (index 0) + the labels of one vocabulary kind.

    Arguments
    ---------
    labels : sequence of str
        The units after the blank, in index order.
    kind : str
        One of ``VOCABULARY_KINDS`` (how text is cut into units).

    Attributes: ``kind``, ``labels`` (blank first), ``index`` (label ->
    index), ``blank_index``, ``encoder`` (the ``CTCTextEncoder``).
    """

    unit_name = "token"  # what the messages call one unit

    def __init__(self, labels, kind):
        if kind not in VOCABULARY_KINDS:
            raise ValueError(f"unknown vocabulary kind {kind!r}; expected one of {VOCABULARY_KINDS}")
        labels = list(labels)
        if len(set(labels)) != len(labels) or BLANK in labels or not labels:
            raise VocabularyError(f"labels must be distinct, non-empty and exclude {BLANK!r}")
        self.kind = kind
        self.encoder = CTCTextEncoder()
        self.encoder.insert_blank(BLANK, index=0)  # first: inserting moves an occupied index
        self.encoder.update_from_iterable(labels, sequence_input=False)
        self.encoder.expect_len(len(labels) + 1)
        self.blank_index = self.encoder.get_blank_index()
        self.index = self.encoder.lab2ind
        self.labels = [self.encoder.ind2lab[i] for i in range(len(self.encoder))]

    # -- the vocabulary of each kind ----------------------------------------

    @staticmethod
    def letters():
        """The 29 symbols of character CTC fine-tuning (a ``LetterVocabulary``)."""
        return LetterVocabulary()

    @classmethod
    def phonemes(cls):
        """Blank + the 39 ARPAbet phonemes of ``data_prep.librispeech_phonemes``."""
        return cls(ARPABET, "phonemes")

    @classmethod
    def from_transcripts(cls, texts, kind):
        """Blank + every unit found in ``texts``, sorted (deterministic)."""
        units = set()
        for text in texts:
            units.update(text_to_units(text, kind))
        if not units:
            raise VocabularyError(f"no {kind} found in the transcripts")
        return cls(sorted(units), kind)

    @classmethod
    def build(cls, kind, texts=()):
        """The fixed vocabulary of ``letters`` / ``phonemes``; the others are
        read from ``texts``."""
        if kind == "letters":
            return cls.letters()
        if kind == "phonemes":
            return cls.phonemes()
        return cls.from_transcripts(texts, kind)

    def __len__(self):
        return len(self.labels)

    def __eq__(self, other):
        return isinstance(other, CTCVocabulary) and (self.kind, self.labels) == (other.kind, other.labels)

    def __repr__(self):
        return f"CTCVocabulary({self.kind}, {len(self)} tokens)"

    # -- text <-> indices -----------------------------------------------------

    def units(self, text):
        return text_to_units(text, self.kind)

    def _unknown(self, units):
        # the blank is never a transcript's unit, even where a kind could spell it
        return list(dict.fromkeys(u for u in units if u not in self.index or u == BLANK))

    def unknown_units(self, text):
        """Units of ``text`` that are not in the vocabulary (in order, once)."""
        return self._unknown(self.units(text))

    def _unknown_message(self, where, text, units, unknown):
        return (f"{where}: {unknown} not in the {len(self)}-token {self.kind} vocabulary "
                f"(transcript {text!r})")

    def encode(self, text, utterance_id=None):
        """Token indices ``[units]`` of a transcript; a clear error names the
        utterance for an empty transcript or a unit the vocabulary has never seen."""
        where = f"utterance {utterance_id}" if utterance_id is not None else "transcript"
        units = self.units(text)
        if not units:
            raise VocabularyError(f"{where}: empty transcript ({text!r}); CTC needs at least one "
                                  f"{self.unit_name}")
        unknown = self._unknown(units)
        if unknown:
            raise VocabularyError(self._unknown_message(where, text, units, unknown))
        return self.encoder.encode_sequence(units)

    def decode_units(self, ids):
        """Units of a token sequence (blanks dropped, no merging)."""
        units = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self):
                raise VocabularyError(f"index {i} outside the {len(self)}-{self.unit_name} vocabulary")
            if i != self.blank_index:
                units.append(self.labels[i])
        return units

    def decode(self, ids):
        """Text of a token sequence (blanks dropped, no CTC merging)."""
        return units_to_text(self.decode_units(ids), self.kind)

    def decode_ctc(self, ids):
        """Text of a frame-level CTC path: merge repeats, then drop blanks."""
        return self.decode(collapse_repeats(ids))

    # -- checks against manifests and saved runs ----------------------------

    def check_labels(self, rows, column, where):
        """Raise one error listing every utterance of ``rows`` (dicts with
        ``ID`` and ``column``) holding a unit outside the vocabulary."""
        bad = []
        for row in rows:
            units = self.units(row[column])
            unknown = self._unknown(units)
            if unknown or not units:
                bad.append(f"{row['ID']}: {unknown or 'empty transcript'}")
        if bad:
            shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
            raise VocabularyError(
                f"{where}: {len(bad)} utterance(s) hold {self.kind} the {len(self)}-token "
                f"vocabulary has never seen (column {column!r}):\n  {shown}")

    def save(self, path):
        """Write the labels (SpeechBrain's ``label_encoder.txt`` format)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.encoder.save(path)

    def check_saved(self, path):
        """Raise if a vocabulary saved at ``path`` (e.g. by the run being
        resumed) differs from this one."""
        saved = CTCTextEncoder()
        saved.load(path)
        if [saved.ind2lab[i] for i in range(len(saved))] != self.labels:
            raise VocabularyError(f"{path}: the saved vocabulary ({len(saved)} tokens) differs "
                                  f"from the one built now ({len(self)} tokens); the checkpoint in "
                                  "this output folder was trained on other transcripts")


class LetterVocabulary(CTCVocabulary):
    """Blank + A-Z + space + apostrophe: the ``letters`` kind, with the token
    names of a lexicon decoder, word splitting and the output-size check.

    Arguments
    ---------
    symbols : sequence of str, optional
        Symbols after the blank, in index order; defaults to the papers'
        28 (``A``-``Z``, space, apostrophe). Every symbol is one character.

    Example
    -------
    >>> LetterVocabulary().encode("a-b", utterance_id="utt7")
    Traceback (most recent call last):
    ...
    speechbrain_ext.downstream.vocabulary.VocabularyError: utterance utt7: character '-' (position 1 of 'A-B') is not in the 29-symbol letter vocabulary (A-Z, space, apostrophe)
    >>> LetterVocabulary() == CTCVocabulary.build("letters")
    True
    """

    unit_name = "symbol"

    def __init__(self, symbols=None):
        symbols = tuple(symbols) if symbols is not None else LETTERS + (WORD_SEPARATOR, APOSTROPHE)
        if len(set(symbols)) != len(symbols) or any(len(s) != 1 for s in symbols):
            raise VocabularyError(f"symbols must be distinct single characters, got {symbols!r}")
        super().__init__(symbols, "letters")
        self.space_index = self.index.get(WORD_SEPARATOR)

    @property
    def symbols(self):
        """The labels as a tuple, blank first."""
        return tuple(self.labels)

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

    def _unknown_message(self, where, text, units, unknown):
        # one character at a time, with its position: what a letter corpus gets wrong
        return (f"{where}: character {unknown[0]!r} (position {units.index(unknown[0])} of "
                f"{''.join(units)!r}) is not in the {len(self)}-symbol letter vocabulary "
                "(A-Z, space, apostrophe)")

    @staticmethod
    def to_words(text):
        """The words of a decoded text (empty pieces from extra spaces dropped).

        Leading/trailing/doubled spaces survive :meth:`decode_ctc`; this cleans them.

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
