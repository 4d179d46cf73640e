"""The n-gram LM builder: ARPA files load in KenLM, every conditional
distribution sums to one, and the probabilities follow the Kneser-Ney formula.

KenLM is the one flashlight-text ships (``flashlight.lib.text.decoder.kenlm``,
the LM the beam search decodes with): a wheel, where the ``kenlm`` PyPI
package is a source build that needs a C++ compiler and Python headers."""
import random

import pytest

from speechbrain_ext.downstream.decoding.ngram import (EOS, UNK, NGramError, build_kneser_ney,
                                                       read_texts, write_arpa)

kenlm = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
dictionary = pytest.importorskip("flashlight.lib.text.dictionary")


def _transcripts(root, split):
    texts = []
    for path in sorted((root / "LibriSpeech" / split).rglob("*.trans.txt")):
        texts += [line.split(" ", 1)[1] for line in path.read_text().splitlines() if line.strip()]
    return texts


class _KenLM:
    """KenLM over a word list; ``prob(context, word)`` is ``p(word | context)``
    read from KenLM's log10 scores (a leading ``<s>`` in ``context`` means
    sentence start, ``</s>`` as ``word`` the end of the sentence)."""

    def __init__(self, path, words):
        self.words = dictionary.Dictionary()
        for word in list(words) + ["NOTAWORD"]:
            self.words.add_entry(word)
        self.model = kenlm.KenLM(str(path), self.words)

    def _state(self, context):
        state = self.model.start(not (context and context[0] == "<s>"))
        for word in context[1:] if context and context[0] == "<s>" else context:
            state, _ = self.model.score(state, self.words.get_index(word))
        return state

    def prob(self, context, word):
        state = self._state(context)
        if word == EOS:
            return 10.0 ** self.model.finish(state)[1]
        return 10.0 ** self.model.score(state, self.words.get_index(word))[1]

    def sentence_log10(self, text):
        state, total = self.model.start(False), 0.0
        for word in text.split():
            state, score = self.model.score(state, self.words.get_index(word))
            total += score
        return total + self.model.finish(state)[1]


@pytest.mark.parametrize("order", [2, 4])
def test_arpa_loads_in_kenlm_and_distributions_sum_to_one(mini_root, tmp_path, order):
    texts = _transcripts(mini_root, "train-clean-100")
    lm = build_kneser_ney(texts, order=order)
    stats = write_arpa(lm, tmp_path / "lm.arpa")
    events = lm.vocabulary + [EOS, UNK]
    model = _KenLM(tmp_path / "lm.arpa", lm.vocabulary + [UNK])
    assert len(stats["ngrams"]) == order
    assert stats["ngrams"][0] == len(lm.vocabulary) + 3  # + <s>, </s>, <unk>
    rng = random.Random(0)
    sentences = [["<s>"] + t.split() for t in texts]
    contexts = [[], ["<s>"]]
    for _ in range(12):  # seen contexts of every length, at sentence start or inside
        words = rng.choice(sentences)
        length = rng.randint(1, order - 1)
        start = rng.randint(0, max(0, len(words) - length))
        contexts.append(words[start:start + length])
    for _ in range(4):  # unseen word sequences: pure back-off
        contexts.append(rng.sample(lm.vocabulary, order - 1))
    contexts.append(["NOTAWORD"] * (order - 1))
    for context in contexts:
        total = sum(model.prob(context, word) for word in events)
        assert total == pytest.approx(1.0, abs=2e-5), context
    # a sentence of the training text is far more likely than its reverse
    first = texts[0]
    assert model.sentence_log10(first) > model.sentence_log10(" ".join(reversed(first.split()))) + 1.0
    # a word outside the vocabulary scores as <unk>
    assert model.prob(["<s>"], "NOTAWORD") == pytest.approx(model.prob(["<s>"], UNK))


def test_bigram_probabilities_follow_kneser_ney_by_hand(tmp_path):
    """p(C | A) of a tiny corpus, computed here from the interpolated
    Kneser-Ney definition, equals what KenLM reads from the ARPA file."""
    write_arpa(build_kneser_ney(["A B", "A C", "B C"], order=2), tmp_path / "tiny.arpa")
    model = _KenLM(tmp_path / "tiny.arpa", ["A", "B", "C", UNK])
    # bigram counts: <s>A 2, AB 1, AC 1, B</s> 1, <s>B 1, BC 1, C</s> 2 -> n1=5, n2=2
    d2 = 5 / (5 + 2 * 2)
    # continuation counts of unigrams: A 1, B 2, C 2, </s> 2 (total 7) -> n1=1, n2=3
    d1 = 1 / (1 + 2 * 3)
    uniform = 1 / 5  # A, B, C, </s>, <unk>
    gamma1 = d1 * 4 / 7
    p_c = (2 - d1) / 7 + gamma1 * uniform
    p_b = (2 - d1) / 7 + gamma1 * uniform
    p_c_given_a = (1 - d2) / 2 + d2 * 2 / 2 * p_c
    # "A" never precedes A, so p(A | B) backs off: gamma(B) * p(A)
    p_a = (1 - d1) / 7 + gamma1 * uniform
    p_a_given_b = d2 * 2 / 2 * p_a
    assert model.prob(["A"], "C") == pytest.approx(p_c_given_a, rel=1e-5)
    assert model.prob(["A"], "B") == pytest.approx((1 - d2) / 2 + d2 * p_b, rel=1e-5)
    assert model.prob(["B"], "A") == pytest.approx(p_a_given_b, rel=1e-5)


def test_bad_input(tmp_path):
    with pytest.raises(NGramError, match="text 2 is empty"):
        build_kneser_ney(["A B", "  "], order=2)
    with pytest.raises(NGramError, match="reserved token '<unk>'"):
        build_kneser_ney(["A <unk>"], order=2)
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("ID,text\n1,A B\n")
    with pytest.raises(NGramError, match="no column 'wrd'"):
        read_texts([csv_path])
