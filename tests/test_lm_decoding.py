"""LM decoding: error rates against a hand count, the beam search without an
LM against a brute-force sum over alignments, greedy vs lexicon beam search
with an n-gram LM on noisy emissions, the grid, and clear errors."""
import itertools
import math

import pytest
import torch

pytest.importorskip("flashlight.lib.text.decoder")

from speechbrain_ext.downstream.decoding.greedy import greedy_ctc_decode
from speechbrain_ext.downstream.decoding.lm_decoding import (CTCBeamSearch, LexiconBeamSearch,
                                                             LMDecodingError, ctc_beam_search,
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



def _labelling_log_probs(log_probs, blank=0):
    """Brute force: the log-probability of every labelling, summed over all
    ``tokens ** frames`` alignments (repeats merged, blanks dropped)."""
    frames, tokens = log_probs.shape
    totals = {}
    for path in itertools.product(range(tokens), repeat=frames):
        score = float(log_probs[torch.arange(frames), torch.tensor(path)].double().sum())
        labelling = tuple(i for i, _ in itertools.groupby(path) if i != blank)
        totals[labelling] = float(torch.logaddexp(torch.tensor(totals.get(labelling, -math.inf),
                                                               dtype=torch.float64),
                                                  torch.tensor(score, dtype=torch.float64)))
    return totals


def test_beam_without_lm_finds_the_most_probable_labelling_not_the_best_path():
    # 3 symbols (blank, a, b), 5 frames; per frame blank 0.45, a 0.35, b 0.2
    # (frame 2: b ahead of a). The best path is all blanks (0.45^5 = 1.8 %),
    # but "a" (and "b") gather many more alignments: the most probable
    # labelling is not the collapse of the argmax path.
    probs = torch.tensor([[0.45, 0.35, 0.20]] * 5)
    probs[2] = torch.tensor([0.45, 0.20, 0.35])
    log_probs = probs.log()
    totals = _labelling_log_probs(log_probs)
    best = max(totals, key=totals.get)
    greedy = tuple(greedy_ctc_decode(log_probs[None], [5])[0])
    assert greedy == () and best != greedy and totals[best] > totals[greedy] + 1.0
    (ids, score), = ctc_beam_search(log_probs, beam_size=50)
    assert tuple(ids) == best
    assert score == pytest.approx(totals[best], abs=1e-5)  # the sum over alignments, not the max
    # random emissions: with a beam wide enough to hold every prefix, the
    # n-best list is the brute-force ranking with its probabilities
    generator = torch.Generator().manual_seed(0)
    differ = 0
    for _ in range(20):
        log_probs = (torch.randn(5, 3, generator=generator) * 1.5).log_softmax(-1)
        totals = _labelling_log_probs(log_probs)
        ranking = sorted(totals, key=totals.get, reverse=True)[:3]
        found = ctc_beam_search(log_probs, beam_size=1000, beam_threshold=1e9, nbest=3)
        assert [tuple(i) for i, _ in found] == ranking
        assert [s for _, s in found] == pytest.approx([totals[r] for r in ranking], abs=1e-5)
        differ += ranking[0] != tuple(greedy_ctc_decode(log_probs[None], [5])[0])
    assert differ > 0  # some of them really separate beam from greedy


def test_beam_without_lm_equals_greedy_on_peaky_emissions():
    generator = torch.Generator().manual_seed(3)
    log_probs = [_emissions(t, generator, noise=0.5) for t in TRAIN]
    lengths = torch.tensor([lp.shape[0] for lp in log_probs])
    padded = torch.nn.utils.rnn.pad_sequence(log_probs, batch_first=True, padding_value=3.0)
    beam = CTCBeamSearch(VOCAB, beam_size=50)
    assert beam.decode(log_probs) == greedy_decode(padded, lengths, VOCAB) == TRAIN
    results = decode_splits(VOCAB, {"dev": (padded, lengths, TRAIN), "test": (padded, lengths, TRAIN)},
                            beam_decoder=beam)
    for split in ("dev", "test"):
        assert results[split]["beam_no_lm"] == results[split]["greedy"] == {"WER": 0.0, "CER": 0.0}
        assert "lm" not in results[split]
    # noisy emissions: the beam's labelling is at least as probable (CTC
    # forward, ``ctc_loss``) as the best path's, and its text is cleaned as greedy's
    noisy = [_emissions(" " + t + " ", generator, noise=2.0) for t in TRAIN]

    def log_prob(emission, ids):
        return -float(torch.nn.functional.ctc_loss(
            emission.double()[:, None], torch.tensor([ids or [0]]), [emission.shape[0]], [len(ids)],
            reduction="sum"))

    greedy_ids = greedy_ctc_decode(torch.nn.utils.rnn.pad_sequence(noisy, batch_first=True),
                                   [lp.shape[0] for lp in noisy])
    beam_ids = beam.decode_ids(noisy)
    assert beam_ids != greedy_ids  # the noise makes them differ somewhere
    for emission, b, g in zip(noisy, beam_ids, greedy_ids):
        assert log_prob(emission, b) >= log_prob(emission, g) - 1e-6
    assert all(h == h.strip() and "  " not in h for h in beam.decode(noisy))
    with pytest.raises(LMDecodingError, match=r"\[frames, 29\]"):
        beam.decode([torch.zeros(10, 32)])
    assert CTCBeamSearch(VOCAB).decode([torch.zeros(0, 29)]) == [""]

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
