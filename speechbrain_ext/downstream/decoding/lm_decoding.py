"""CTC decoding of letter outputs: greedy (``decoding.greedy``, words
single-spaced), a lexicon-free beam search without an LM
(:class:`CTCBeamSearch`, paper 000's "beam 50 without LM"), and lexicon beam
search with a word n-gram LM and a word insertion score; the grid search over
both on dev, scored by ``metrics.error_rates``.

The beam search without an LM is a CTC prefix beam search: flashlight-text's
lexicon-free decoder with its ``ZeroLM`` (whose states are the nodes of a
trie of emitted tokens, so each hypothesis is one labelling prefix) and
``log_add``, so that the alignments of one labelling are summed, not maxed.
Within the beam it returns the labelling of highest total probability, which
need not be the collapse of the best path (greedy).

The beam search is flashlight-text's lexicon decoder (the engine behind
torchaudio's ``ctc_decoder``), driven directly so that the lexicon trie and
the KenLM model (ARPA or binary) are built once and shared by every point of
the grid: only the cheap decoder object changes with ``lm_weight`` and
``word_score``. Paper 000: beam 50, 4-gram LM, grid of LM weight over
[0.1, 2.0] step 0.1 and word insertion over [-0.5, 0.5] step 0.05 chosen on
dev and applied to test. Paper 001: beam and threshold 50, LM weight 2, word
score 0.

The lexicon spells every word as its letters followed by the word separator
``|`` (fairseq/flashlight convention); a word with a character outside the
letter vocabulary is an error, and so is an LM whose vocabulary cannot be
spelled with the letters (e.g. a lower-case LM) or shares too few words with
the lexicon.

Example
-------
>>> import tempfile, torch
>>> from speechbrain_ext.downstream.decoding.ngram import build_kneser_ney, write_arpa
>>> from speechbrain_ext.downstream.vocabulary import LetterVocabulary
>>> vocab = LetterVocabulary()
>>> arpa = write_arpa(build_kneser_ney(["HI THERE", "HI YOU"], 2), tempfile.mkdtemp() + "/lm.arpa")["path"]
>>> decoder = LexiconBeamSearch(vocab, ["HI", "THERE", "YOU"], lm_path=arpa, beam_size=10)
>>> # a frame path "HH-II| TTHHERRE" ('-' blank, '|' and ' ' the word separator)
>>> path = [0 if c == "-" else vocab.space_index if c in "| " else vocab.index[c]
...         for c in "HH-II| TTHHERRE"]
>>> log_probs = torch.full((len(path), 29), -10.0)
>>> log_probs[torch.arange(len(path)), torch.tensor(path)] = 0.0
>>> greedy_decode(log_probs[None], torch.tensor([len(path)]), vocab)
['HI THERE']
>>> decoder.decode([log_probs], lm_weight=0.5, word_score=0.0)
['HI THERE']
>>> CTCBeamSearch(vocab, beam_size=50).decode([log_probs])
['HI THERE']
"""
import itertools
import logging
import math
from pathlib import Path

import torch

from speechbrain_ext.downstream.decoding.greedy import greedy_ctc_texts
from speechbrain_ext.downstream.metrics import error_rates
from speechbrain_ext.downstream.vocabulary import (FAIRSEQ_WORD_SEPARATOR, VocabularyError,
                                                 collapse_repeats)

logger = logging.getLogger(__name__)
UNK_WORD = "<unk>"
SPECIAL_WORDS = ("<s>", "</s>", "<unk>")


class LMDecodingError(ValueError):
    """An LM, lexicon or emission that does not fit the decoder."""


def paper_grid():
    """Paper 000's grid: LM weight 0.1..2.0 step 0.1, word insertion -0.5..0.5
    step 0.05 (20 x 21 points).

    >>> weights, scores = paper_grid()
    >>> len(weights), weights[0], weights[-1], len(scores), scores[0], scores[10], scores[-1]
    (20, 0.1, 2.0, 21, -0.5, 0.0, 0.5)
    """
    weights = [round(0.1 * k, 2) for k in range(1, 21)]
    scores = [round(-0.5 + 0.05 * k, 2) for k in range(21)]
    return weights, scores


def lm_vocabulary(lm_path):
    """The words of an n-gram LM: the unigram section of an ARPA file (read
    as a stream, so the 4-gram LibriSpeech ARPA needs no memory), or the
    vocabulary of a KenLM binary (through the ``kenlm`` module)."""
    lm_path = Path(lm_path)
    if not lm_path.is_file():
        raise LMDecodingError(f"LM {lm_path}: no such file")
    with open(lm_path, "rb") as handle:
        is_arpa = handle.read(64).lstrip().startswith(b"\\data\\")
    if not is_arpa:
        # a KenLM binary: its vocabulary is not read here (the decoder maps
        # words it lacks to <unk>), so only the ARPA checks are skipped
        logger.info(f"{lm_path}: binary LM, vocabulary not checked against the tokens")
        return None
    words, in_unigrams = set(), False
    with open(lm_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and line.startswith("\\"):
                break
            elif in_unigrams and line:
                parts = line.split()
                if len(parts) < 2:
                    raise LMDecodingError(f"LM {lm_path}: malformed unigram line {line!r}")
                words.add(parts[1])
    if not words:
        raise LMDecodingError(f"LM {lm_path}: ARPA file without a \\1-grams: section")
    return words


def check_lm_vocabulary(lm_words, lexicon_words, vocabulary, lm_path="the LM", min_overlap=0.5):
    """Raise :class:`LMDecodingError` when the LM cannot be used with the
    letter vocabulary and lexicon: words it cannot spell (e.g. lower case),
    or fewer than ``min_overlap`` of the lexicon's words in the LM."""
    allowed = set(vocabulary.symbols[1:]) - {" "}
    unspellable = sorted(w for w in lm_words if w not in SPECIAL_WORDS and not set(w) <= allowed)
    if unspellable:
        raise LMDecodingError(
            f"{lm_path}: {len(unspellable)} of its {len(lm_words)} words cannot be spelled with the "
            f"letter vocabulary (A-Z, apostrophe), e.g. {unspellable[:5]}; the LM vocabulary does "
            "not match the tokens (an LM for another normalisation, e.g. lower case?)")
    lexicon_words = set(lexicon_words)
    if lexicon_words:
        shared = len(lexicon_words & set(lm_words)) / len(lexicon_words)
        if shared < min_overlap:
            missing = sorted(lexicon_words - set(lm_words))[:5]
            raise LMDecodingError(
                f"{lm_path}: only {shared:.0%} of the lexicon's {len(lexicon_words)} words are in the "
                f"LM vocabulary (e.g. missing {missing}); the LM vocabulary does not match the "
                f"lexicon (expected at least {min_overlap:.0%})")


def greedy_decode(log_probs, lengths, vocabulary):
    """Best path of each utterance (``greedy.greedy_ctc_texts``) as the LM
    decoder writes its output, words single-spaced: ``log_probs`` ``[batch,
    frames, tokens]``, ``lengths`` ``[batch]`` frames -> list of texts."""
    return [" ".join(vocabulary.to_words(text))
            for text in greedy_ctc_texts(log_probs, lengths, vocabulary)]



def _emission(log_probs, size=None):
    """One utterance's ``[frames, tokens]`` scores as a contiguous float32
    CPU tensor (what flashlight reads through its pointer)."""
    emission = log_probs.detach().to("cpu", torch.float32).contiguous()
    if emission.dim() != 2 or (size is not None and emission.shape[1] != size):
        raise LMDecodingError(
            f"emissions must be [frames, {size if size is not None else 'tokens'}] per utterance, "
            f"got {tuple(emission.shape)}")
    return emission


def ctc_beam_search(log_probs, beam_size=50, beam_threshold=50.0, blank_index=0,
                    beam_size_token=None, nbest=1):
    """CTC prefix beam search without an LM over one utterance.

    Arguments
    ---------
    log_probs : torch.Tensor
        ``[frames, tokens]`` log-posteriors (log-softmax outputs: the scores
        of the alignments of a labelling are summed as probabilities).
    beam_size : int
        Hypotheses (labelling prefix, last token, after-blank flag) kept per
        frame; 50 in paper 000.
    beam_threshold : float
        Hypotheses scoring below the frame's best minus this are dropped.
    blank_index : int
    beam_size_token : int, optional
        Tokens tried per frame (the most likely ones); default all.
    nbest : int

    Returns
    -------
    list of ``(token ids, log-probability)``: the ``nbest`` labellings of
    highest total probability found (repeats merged, blanks dropped), best
    first; the log-probability is the log of the sum over the alignments of
    the labelling that survived the beam (exact when none was pruned).

    >>> import math
    >>> lp = torch.tensor([[0.5, 0.4, 0.1]] * 3).log()
    >>> [(ids, round(math.exp(score), 3)) for ids, score in ctc_beam_search(lp, nbest=2)]
    [([1], 0.524), ([], 0.125)]
    >>> from speechbrain_ext.downstream.decoding.greedy import greedy_ctc_decode
    >>> greedy_ctc_decode(lp[None], [3])  # the best path is all blanks (0.125)
    [[]]
    """
    from flashlight.lib.text.decoder import (CriterionType, LexiconFreeDecoder,
                                             LexiconFreeDecoderOptions, ZeroLM)

    emission = _emission(log_probs)
    frames, tokens = emission.shape
    if frames == 0:
        return [([], 0.0)]
    options = LexiconFreeDecoderOptions(
        beam_size=int(beam_size), beam_size_token=int(beam_size_token or tokens),
        beam_threshold=float(beam_threshold), lm_weight=0.0, sil_score=0.0, log_add=True,
        criterion_type=CriterionType.CTC)
    # the "silence" token only starts and ends each hypothesis here: the
    # blank, so that no real token is treated as a repeat of the start
    decoder = LexiconFreeDecoder(options, ZeroLM(), blank_index, blank_index, [])
    results = decoder.decode(emission.data_ptr(), frames, tokens)
    # results[k].tokens: the start token, one per frame, the end token
    return [([i for i in collapse_repeats(r.tokens[1:-1]) if i != blank_index], float(r.score))
            for r in results[:int(nbest)]]


class CTCBeamSearch:
    """Lexicon-free CTC beam search without an LM (:func:`ctc_beam_search`)
    giving texts as :func:`greedy_decode` does, words single-spaced.

    Arguments
    ---------
    vocabulary : LetterVocabulary
        The model's output symbols (index 0 blank).
    beam_size, beam_threshold : int, float
        50 and 50 (paper 000: beam 50 with and without the LM).
    beam_size_token : int, optional
        Tokens tried per frame; default all.
    """

    def __init__(self, vocabulary, beam_size=50, beam_threshold=50.0, beam_size_token=None):
        self.vocabulary = vocabulary
        self.beam_size, self.beam_threshold = int(beam_size), float(beam_threshold)
        self.beam_size_token = beam_size_token

    def decode_ids(self, log_probs):
        """Token ids of the best labelling of each ``[frames, tokens]`` utterance."""
        ids = []
        for emission in log_probs:
            emission = _emission(emission, len(self.vocabulary))
            ids.append(ctc_beam_search(emission, self.beam_size, self.beam_threshold,
                                       self.vocabulary.blank_index, self.beam_size_token)[0][0])
        return ids

    def decode(self, log_probs):
        """Texts of a list of per-utterance ``[frames, tokens]`` log-probabilities."""
        return [" ".join(self.vocabulary.to_words(self.vocabulary.decode(ids)))
                for ids in self.decode_ids(log_probs)]

class LexiconBeamSearch:
    """Lexicon-constrained CTC beam search with an optional n-gram LM.

    Arguments
    ---------
    vocabulary : LetterVocabulary
        The model's output symbols (index 0 blank).
    lexicon_words : iterable of str
        Words the decoder may output (e.g. the training transcripts' words);
        the LM's own words are added when an ARPA LM is given.
    lm_path : str or Path, optional
        ARPA or KenLM binary word LM; None decodes with the lexicon only.
    beam_size, beam_threshold : int, float
        50 and 50 (papers 000, 001).
    min_lm_overlap : float
        Least fraction of ``lexicon_words`` the LM must know.
    """

    def __init__(self, vocabulary, lexicon_words, lm_path=None, beam_size=50, beam_threshold=50.0,
                 beam_size_token=None, unk_score=-math.inf, sil_score=0.0, min_lm_overlap=0.5,
                 add_lm_words=True):
        from flashlight.lib.text.decoder import SmearingMode, Trie, ZeroLM
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        self.vocabulary = vocabulary
        self.beam_size, self.beam_threshold = int(beam_size), float(beam_threshold)
        self.beam_size_token = int(beam_size_token or len(vocabulary))
        self.unk_score, self.sil_score = unk_score, sil_score
        words = {vocabulary.normalize(w) for w in lexicon_words} - {""}
        for word in sorted(words):
            if " " in word:
                raise LMDecodingError(f"lexicon entry {word!r} holds a space")
            try:
                vocabulary.encode(word, utterance_id=f"(lexicon word {word!r})")
            except VocabularyError as err:
                raise LMDecodingError(str(err)) from err
        if lm_path is not None:
            lm_words = lm_vocabulary(lm_path)
            if lm_words is not None:
                check_lm_vocabulary(lm_words, words, vocabulary, lm_path, min_lm_overlap)
                if add_lm_words:
                    words |= set(lm_words) - set(SPECIAL_WORDS)
        if not words:
            raise LMDecodingError("empty lexicon: the decoder needs at least one word")
        self.words = sorted(words)
        self.tokens = vocabulary.tokens
        self.token_dict = Dictionary(self.tokens)
        self.silence = self.tokens.index(FAIRSEQ_WORD_SEPARATOR)
        spellings = {w: [list(w) + [FAIRSEQ_WORD_SEPARATOR]] for w in self.words}
        self.word_dict = Dictionary()
        for word in self.words + [UNK_WORD]:
            self.word_dict.add_entry(word)
        self.unk_index = self.word_dict.get_index(UNK_WORD)
        self.lm = KenLM(str(lm_path), self.word_dict) if lm_path is not None else ZeroLM()
        # the trie holds each word's spelling with its unigram LM score, smeared
        # (max) towards the root so partial words are scored by their best word
        self.trie = Trie(len(self.tokens), self.silence)
        start = self.lm.start(False)
        for word, (spelling,) in spellings.items():
            index = self.word_dict.get_index(word)
            _, score = self.lm.score(start, index)
            self.trie.insert([self.token_dict.get_index(t) for t in spelling], index, score)
        self.trie.smear(SmearingMode.MAX)

    def _decoder(self, lm_weight, word_score):
        from flashlight.lib.text.decoder import CriterionType, LexiconDecoder, LexiconDecoderOptions

        options = LexiconDecoderOptions(
            beam_size=self.beam_size, beam_size_token=self.beam_size_token,
            beam_threshold=self.beam_threshold, lm_weight=float(lm_weight),
            word_score=float(word_score), unk_score=self.unk_score, sil_score=self.sil_score,
            log_add=False, criterion_type=CriterionType.CTC)
        return LexiconDecoder(options, self.trie, self.lm, self.silence,
                              self.vocabulary.blank_index, self.unk_index, [], False)

    def decode(self, log_probs, lm_weight=2.0, word_score=0.0):
        """Texts of a list of per-utterance ``[frames, tokens]`` log-probabilities."""
        decoder = self._decoder(lm_weight, word_score)
        texts = []
        for emission in log_probs:
            emission = _emission(emission, len(self.vocabulary))
            results = decoder.decode(emission.data_ptr(), emission.shape[0], emission.shape[1])
            words = [self.word_dict.get_entry(i) for i in results[0].words if i >= 0] if results else []
            texts.append(" ".join(words))
        return texts


def grid_search(decoder, log_probs, references, lm_weights, word_scores):
    """Decode ``log_probs`` (list of ``[frames, tokens]``) at every point of
    the grid; returns ``{"lm_weight", "word_score", "WER", "CER", "grid":
    [(lm_weight, word_score, WER), ...]}`` for the lowest WER (ties: the
    first point, i.e. the smallest weight and score)."""
    grid, best = [], None
    for lm_weight, word_score in itertools.product(lm_weights, word_scores):
        rates = error_rates(references, decoder.decode(log_probs, lm_weight, word_score))
        grid.append((float(lm_weight), float(word_score), rates["WER"]))
        if best is None or rates["WER"] < best["WER"]:
            best = {"lm_weight": float(lm_weight), "word_score": float(word_score), **rates}
    best["grid"] = grid
    return best


def decode_splits(vocabulary, splits, decoder=None, lm_weights=None, word_scores=None, tune_on=None,
                  beam_decoder=None):
    """Greedy, beam-without-LM and LM decoding of several splits, the LM grid
    tuned on one.

    ``splits`` maps a name to ``(log_probs [batch, frames, tokens] or list,
    lengths [batch] frames, reference texts)``; ``beam_decoder`` a
    :class:`CTCBeamSearch` (or None), ``decoder`` a
    :class:`LexiconBeamSearch` (or None). Returns ``{"tuned": best grid
    point (or None), split: {"greedy": {WER, CER}, "beam_no_lm": {WER, CER},
    "lm": {WER, CER}}}`` (``beam_no_lm`` / ``lm`` only with their decoder).
    """
    results, per_utterance = {}, {}
    for name, (log_probs, lengths, refs) in splits.items():
        refs = [" ".join(vocabulary.to_words(vocabulary.normalize(r))) for r in refs]
        utterances = [log_probs[b, :int(n)] for b, n in enumerate(lengths)]
        per_utterance[name] = (utterances, refs)
        results[name] = {"greedy": error_rates(refs, greedy_decode(log_probs, lengths, vocabulary))}
        if beam_decoder is not None:
            results[name]["beam_no_lm"] = error_rates(refs, beam_decoder.decode(utterances))
    results["tuned"] = None
    if decoder is not None:
        if lm_weights is None or word_scores is None:
            lm_weights, word_scores = paper_grid()
        tune_on = tune_on or next(iter(splits))
        if tune_on not in splits:
            raise LMDecodingError(f"tune_on={tune_on!r} is not one of the splits {list(splits)}")
        best = grid_search(decoder, *per_utterance[tune_on], lm_weights, word_scores)
        results["tuned"] = {**best, "split": tune_on}
        for name, (utterances, refs) in per_utterance.items():
            hyps = decoder.decode(utterances, best["lm_weight"], best["word_score"])
            results[name]["lm"] = error_rates(refs, hyps)
    return results
