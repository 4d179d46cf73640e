"""The 29-symbol letter vocabulary: layout, round trips, CTC collapsing, errors."""
import pytest

from speechbrain_ext.downstream.vocabulary import LetterVocabulary, VocabularyError


def test_layout_matches_fairseq_letter_dictionary():
    vocab = LetterVocabulary()
    assert len(vocab) == 29
    assert vocab.symbols[0] == "<blank>" and vocab.blank_index == 0
    assert "".join(vocab.symbols[1:27]) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert vocab.symbols[27] == " " and vocab.space_index == 27
    assert vocab.symbols[28] == "'"
    # decoder token names: fairseq's "|" for the word separator
    assert vocab.tokens[27] == "|" and vocab.tokens[0] == "-"
    assert len(set(vocab.tokens)) == 29


def test_round_trip_on_corpus_transcripts(mini_root):
    """Every synthetic LibriSpeech transcript encodes and decodes back exactly."""
    vocab = LetterVocabulary()
    lines = []
    for path in sorted((mini_root / "LibriSpeech" / "dev-clean").rglob("*.trans.txt")):
        lines += [line.split(" ", 1) for line in path.read_text().splitlines() if line.strip()]
    assert lines
    for uid, text in lines:
        ids = vocab.encode(text, utterance_id=uid)
        assert all(1 <= i < 29 for i in ids)
        assert vocab.decode(ids) == LetterVocabulary.normalize(text)


def test_ctc_collapse_needs_blank_between_repeats():
    vocab = LetterVocabulary()
    a, b, space = vocab.index["A"], vocab.index["B"], vocab.space_index
    assert vocab.decode_ctc([a, a, a, b]) == "AB"
    assert vocab.decode_ctc([a, 0, a, b, b, 0]) == "AAB"
    assert vocab.decode_ctc([0, 0, 0]) == ""
    assert vocab.to_words(vocab.decode_ctc([space, a, space, space, 0, space, b])) == ["A", "B"]


def test_clear_errors():
    vocab = LetterVocabulary()
    with pytest.raises(VocabularyError, match="utterance 84-121-0001.*'7'"):
        vocab.encode("ROOM 7", utterance_id="84-121-0001")
    with pytest.raises(VocabularyError, match="utterance u3: empty transcript"):
        vocab.encode("  \t", utterance_id="u3")
    with pytest.raises(VocabularyError, match="32 output classes.*29"):
        vocab.check_output_size(32, where="checkpoint x")
    with pytest.raises(VocabularyError, match="outside"):
        vocab.decode([29])
