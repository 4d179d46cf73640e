"""A small word n-gram LM builder (interpolated Kneser-Ney) writing ARPA.

For corpora without a published LM (the synthetic LibriSpeech); users of the
real LibriSpeech pass the official 4-gram ARPA to the decoder instead.

Smoothing: interpolated Kneser-Ney with one absolute discount per order,
``D_n = n1 / (n1 + 2 n2)`` (Ney's estimate from the counts-of-counts of that
order's adjusted counts). The highest order uses raw counts; lower orders
use continuation counts ``N1+(. g)`` (number of distinct left neighbours),
except n-grams starting with ``<s>``, which have no left neighbour and keep
raw counts (as KenLM's lmplz and SRILM do). The unigram level interpolates
with the uniform distribution over the vocabulary, ``</s>`` and ``<unk>``, so
``<unk>`` gets a small probability.

For a context ``h`` (``c(h w)`` the order's counts):

    p(w | h) = max(c(h w) - D, 0) / c(h .) + gamma(h) p(w | h')
    gamma(h) = D N1+(h .) / c(h .)

In ARPA form the stored probability of a seen n-gram is the whole
interpolated value and ``gamma(h)`` is the back-off weight of ``h``, so
``p(w | h) = bow(h) p(w | h')`` for an unseen ``h w`` reproduces the
interpolation exactly: every conditional distribution sums to one
(checked through kenlm in ``tests/test_ngram.py``).

Example
-------
>>> import tempfile
>>> path = tempfile.mkdtemp() + "/lm.arpa"
>>> stats = write_arpa(build_kneser_ney(["A B A", "A B"], order=2), path)
>>> stats["ngrams"]
[5, 5]
>>> print(open(path).read().split("\\n\\n")[0])
\\data\\
ngram 1=5
ngram 2=5
"""
import argparse
import math
from collections import Counter
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LOG10_ZERO = -99.0  # ARPA convention for log10(0) (the probability of <s>)


class NGramError(ValueError):
    """Bad input to the n-gram builder."""


def _sentences(texts):
    for number, text in enumerate(texts, 1):
        words = str(text).split()
        if not words:
            raise NGramError(f"text {number} is empty: every training sentence needs a word")
        for word in words:
            if word in (BOS, EOS, UNK):
                raise NGramError(f"text {number} contains the reserved token {word!r}")
        yield [BOS] + words + [EOS]


def _discount(counts):
    """Ney's ``n1 / (n1 + 2 n2)``; 0.5 when the counts-of-counts are degenerate."""
    of = Counter(counts.values())
    n1, n2 = of.get(1, 0), of.get(2, 0)
    if n1 == 0 or n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2.0 * n2), 0.05), 0.95)


class KneserNeyLM:
    """A built interpolated Kneser-Ney model (probabilities, not yet ARPA).

    ``probs[n]`` maps each n-gram tuple of order ``n + 1`` to its
    interpolated probability; ``backoffs[n]`` maps contexts (tuples of
    order ``n + 1``) to ``gamma``; ``vocabulary`` holds the words (no
    ``<s>``, ``</s>``, ``<unk>``).
    """

    def __init__(self, order, probs, backoffs, vocabulary, discounts):
        self.order, self.probs, self.backoffs = order, probs, backoffs
        self.vocabulary, self.discounts = vocabulary, discounts

    def prob(self, word, context=()):
        """``p(word | context)`` with back-off (for tests and debugging)."""
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        weight = 1.0
        while True:
            gram = context + (word,)
            if gram in self.probs[len(gram) - 1]:
                return weight * self.probs[len(gram) - 1][gram]
            if not context:
                return weight * self.probs[0][(UNK,)]
            weight *= self.backoffs[len(context) - 1].get(context, 1.0)
            context = context[1:]


def build_kneser_ney(texts, order=3):
    """Interpolated Kneser-Ney ``order``-gram model of whitespace-tokenised
    sentences (one string per sentence). Returns a :class:`KneserNeyLM`."""
    if int(order) < 1:
        raise NGramError(f"order must be at least 1, got {order}")
    order = int(order)
    raw = [Counter() for _ in range(order)]  # raw[n]: counts of (n+1)-grams
    for sentence in _sentences(texts):
        for n in range(order):
            for i in range(len(sentence) - n):
                raw[n][tuple(sentence[i:i + n + 1])] += 1
    if not raw[0]:
        raise NGramError("no training text")
    # adjusted counts: raw at the top order and for grams starting with <s>,
    # continuation counts (distinct left neighbours) below
    adjusted = [Counter() for _ in range(order)]
    adjusted[-1] = Counter(raw[-1])
    for n in range(order - 1):
        for gram in raw[n]:
            if gram[0] == BOS:
                adjusted[n][gram] = raw[n][gram]
        for gram in raw[n + 1]:
            if gram[1] != BOS:
                adjusted[n][gram[1:]] += 1
    adjusted[0].pop((BOS,), None)  # <s> is never predicted
    vocabulary = sorted({g[0] for g in raw[0]} - {BOS, EOS})
    discounts = [_discount(adjusted[n]) for n in range(order)]

    probs = [dict() for _ in range(order)]
    backoffs = [dict() for _ in range(order)]
    # unigrams, interpolated with the uniform distribution
    events = vocabulary + [EOS, UNK]
    total = sum(adjusted[0].values())
    gamma = discounts[0] * len(adjusted[0]) / total
    for word in events:
        count = adjusted[0].get((word,), 0)
        probs[0][(word,)] = max(count - discounts[0], 0.0) / total + gamma / len(events)
    for n in range(1, order):
        context_total, context_types = Counter(), Counter()
        for gram, count in adjusted[n].items():
            context_total[gram[:-1]] += count
            context_types[gram[:-1]] += 1
        for context, count in context_total.items():
            backoffs[n - 1][context] = discounts[n] * context_types[context] / count
        for gram, count in adjusted[n].items():
            context = gram[:-1]
            lower = _interpolated_lower(probs, backoffs, gram[1:])
            probs[n][gram] = (max(count - discounts[n], 0.0) / context_total[context]
                              + backoffs[n - 1][context] * lower)
    return KneserNeyLM(order, probs, backoffs, vocabulary, discounts)


def _interpolated_lower(probs, backoffs, gram):
    """``p(gram[-1] | gram[:-1])`` from the orders already computed."""
    weight = 1.0
    while gram not in probs[len(gram) - 1]:
        weight *= backoffs[len(gram) - 2].get(gram[:-1], 1.0)
        gram = gram[1:]
    return weight * probs[len(gram) - 1][gram]


def write_arpa(model, path):
    """Write ``model`` (a :class:`KneserNeyLM`) as an ARPA file. Returns
    ``{"path", "order", "ngrams": [count per order], "vocabulary"}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unigrams = dict(model.probs[0])
    unigrams[(BOS,)] = None  # <s>: never predicted, but a context
    sections = [unigrams] + model.probs[1:]
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for n, grams in enumerate(sections):
            out.write(f"ngram {n + 1}={len(grams)}\n")
        for n, grams in enumerate(sections):
            out.write(f"\n\\{n + 1}-grams:\n")
            has_backoff = n < model.order - 1
            for gram in sorted(grams):
                prob = grams[gram]
                logp = LOG10_ZERO if prob is None else math.log10(prob)
                line = f"{logp:.7f}\t{' '.join(gram)}"
                if has_backoff and gram in model.backoffs[n]:
                    line += f"\t{math.log10(model.backoffs[n][gram]):.7f}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")
    tmp.replace(path)
    return {"path": str(path), "order": model.order,
            "ngrams": [len(s) for s in sections], "vocabulary": len(model.vocabulary)}


def read_texts(paths, column="wrd"):
    """Sentences from CSV manifests (``column``) or plain text files (one
    sentence per line)."""
    import csv

    texts = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise NGramError(f"{path}: no such file (a LibriSpeech manifest comes from "
                             "python -m data_prep.librispeech --data_folder DIR --save_folder OUT, "
                             "as OUT/<split>.csv, e.g. OUT/train-clean-100.csv)")
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if column not in (reader.fieldnames or []):
                    raise NGramError(f"{path}: no column {column!r} (columns: {reader.fieldnames})")
                texts += [row[column] for row in reader]
        else:
            texts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts


def main(argv=None):
    """``python -m speechbrain_ext.downstream.decoding.ngram --text results/prep/ls/train-clean-100.csv
    --order 3 --out results/lm/3gram.arpa`` (the manifest written by ``python -m data_prep.librispeech``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", nargs="+", required=True,
                        help="CSV manifests (column --column; e.g. the <split>.csv that "
                             "python -m data_prep.librispeech writes) or text files, one sentence a line")
    parser.add_argument("--column", default="wrd", help="the manifests' transcript column")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--out", required=True, help="the ARPA file to write (folders are created)")
    args = parser.parse_args(argv)
    texts = read_texts(args.text, args.column)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    stats = write_arpa(build_kneser_ney(texts, args.order), args.out)
    print(f"{stats['order']}-gram LM of {len(texts)} sentences, vocabulary {stats['vocabulary']}, "
          f"n-grams per order {stats['ngrams']} -> {stats['path']}")
    return stats


if __name__ == "__main__":
    main()
