"""LM decoding: error rates against a hand count, greedy vs lexicon beam
search with an n-gram LM on noisy emissions, the grid, and clear errors."""
import pytest
import torch

pytest.importorskip("flashlight.lib.text.decoder")

from speechbrain_ext.downstream.decoding.lm_decoding import (LexiconBeamSearch, LMDecodingError,
                                                             decode_splits, greedy_decode, grid_search,
                                                             paper_grid)
from speechbrain_ext.downstream.decoding.ngram import build_kneser_ney, write_arpa
from speechbrain_ext.downstream.metrics import error_rates
from speechbrain_ext.downstream.vocabulary import LetterVocabulary

VOCAB = LetterVocabulary()
TRAIN = ["THE CAT SAT ON THE MAT", "THE DOG SAT ON THE LOG", "A CAT SAW THE DOG",
         "THE DOG SAW A CAT ON THE MAT"]


def test_error_rates_against_hand_count():
    # ref 4 words; hyp: one substitution (SAT->SET), one deletion (THE), one insertion (BIG)
    rates = error_rates(["THE CAT SAT DOWN"], ["CAT SET DOWN BIG"])
    assert rates["WER"] == pytest.approx(100 * 3 / 4)
    # characters: "AB C" vs "AXC": substitution B->X, deletion of the space: 2 / 4
    assert error_rates(["AB C"], ["AXC"])["CER"] == pytest.approx(50.0)
    assert error_rates(["A B", "C"], ["A B", "C"]) == {"WER": 0.0, "CER": 0.0}


def _emissions(text, generator, noise=2.5, repeat=2):
    """Log-probabilities of a CTC path spelling ``text`` (each letter over
    ``repeat`` frames, blanks between), blurred with Gaussian noise."""
    path = []
    for char in text:
        path += [VOCAB.index[char]] * repeat + [0]
    logits = torch.randn(len(path), len(VOCAB), generator=generator) * noise
    logits[torch.arange(len(path)), torch.tensor(path)] += 4.0
    return logits.log_softmax(-1)


def test_greedy_decode_reads_each_utterance_alone_words_single_spaced():
    generator = torch.Generator().manual_seed(2)
    log_probs = [_emissions(" " + t + "  ", generator, noise=1.0) for t in TRAIN]
    lengths = torch.tensor([lp.shape[0] for lp in log_probs])
    padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True, padding_value=5.0)
    alone = [" ".join(VOCAB.to_words(VOCAB.decode_ctc(lp.argmax(-1)))) for lp in log_probs]
    assert greedy_decode(padded, lengths, VOCAB) == greedy_decode(padded, lengths.tolist(), VOCAB) == alone
    assert all(h == h.strip() and "  " not in h for h in alone)
    results = decode_splits(VOCAB, {"dev": (padded, lengths, TRAIN)})
    assert results["dev"]["greedy"] == error_rates(TRAIN, alone) and results["tuned"] is None


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    return write_arpa(build_kneser_ney(TRAIN, 3), tmp_path_factory.mktemp("lm") / "lm.arpa")["path"]


def test_lm_decoding_beats_greedy_on_noisy_emissions(arpa):
    generator = torch.Generator().manual_seed(0)
    refs = TRAIN * 3
    log_probs = [_emissions(t, generator) for t in refs]
    lengths = torch.tensor([lp.shape[0] for lp in log_probs])
    padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True)
    words = {w for t in TRAIN for w in t.split()}
    decoder = LexiconBeamSearch(VOCAB, words, lm_path=arpa, beam_size=50)
    results = decode_splits(VOCAB, {"dev": (padded, lengths, refs)}, decoder,
                            lm_weights=[0.0, 1.0, 2.0], word_scores=[-0.5, 0.0, 0.5], tune_on="dev")
    greedy, lm = results["dev"]["greedy"]["WER"], results["dev"]["lm"]["WER"]
    assert greedy > 20.0  # the noise really corrupts the letters
    assert lm < greedy / 2
    assert results["tuned"]["WER"] == lm
    grid = results["tuned"]["grid"]
    assert len(grid) == 9 and min(g[2] for g in grid) == lm
    # the LM itself helps: weight 0 (lexicon only) is no better than the tuned point
    assert min(g[2] for g in grid if g[0] == 0.0) >= lm
    # decoding a clean path gives the words back exactly
    clean = _emissions(TRAIN[0], generator, noise=0.0)
    assert decoder.decode([clean], 1.0, 0.0) == [TRAIN[0]]


def test_grid_search_returns_the_best_point(arpa):
    generator = torch.Generator().manual_seed(1)
    decoder = LexiconBeamSearch(VOCAB, {w for t in TRAIN for w in t.split()}, lm_path=arpa, beam_size=20)
    log_probs = [_emissions(t, generator, noise=3.0) for t in TRAIN]
    best = grid_search(decoder, log_probs, TRAIN, [0.5, 2.0], [-0.5, 0.5])
    wers = {(w, s): e for w, s, e in best["grid"]}
    assert best["WER"] == min(wers.values()) == wers[(best["lm_weight"], best["word_score"])]
    weights, scores = paper_grid()
    assert weights == [round(0.1 * k, 1) for k in range(1, 21)]
    assert scores[1] - scores[0] == pytest.approx(0.05) and len(scores) == 21


def test_clear_errors(arpa, tmp_path):
    lower = tmp_path / "lower.arpa"
    write_arpa(build_kneser_ney(["the cat", "a dog"], 2), lower)
    with pytest.raises(LMDecodingError, match="cannot be spelled.*does not match the tokens"):
        LexiconBeamSearch(VOCAB, ["THE", "CAT"], lm_path=lower)
    with pytest.raises(LMDecodingError, match="only 0% of the lexicon.*does not match the lexicon"):
        LexiconBeamSearch(VOCAB, ["ZEBRA", "YAK", "QUAIL"], lm_path=arpa)
    with pytest.raises(LMDecodingError, match="no such file"):
        LexiconBeamSearch(VOCAB, ["THE"], lm_path=tmp_path / "missing.arpa")
    with pytest.raises(LMDecodingError, match="'7'"):
        LexiconBeamSearch(VOCAB, ["ROOM7"])
    decoder = LexiconBeamSearch(VOCAB, ["THE"])
    with pytest.raises(LMDecodingError, match=r"\[frames, 29\]"):
        decoder.decode([torch.zeros(10, 32)])
