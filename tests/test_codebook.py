"""Codebook statistics (``speechbrain_ext.analysis.codebook``) against direct
computations written out here with plain loops and explicit formulas."""
import math

import pytest
import torch

from speechbrain_ext.analysis.codebook import (codebook_entries, codebook_similarity,
                                               codebook_statistics_over_checkpoints,
                                               group_perplexities, validation_statistics)
from speechbrain_ext.analysis.gradient_variance import CheckpointRef, read_rows
from speechbrain_ext.pretraining.quantizer import GumbelVectorQuantizer, perplexity

GROUPS, ENTRIES, DIM = 2, 5, 3  # codevector_dim = GROUPS * DIM
HAND_SET = [
    # group 0
    [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 0.5, 2.0], [0.3, -0.2, 0.1],
    # group 1
    [1.0, 1.0, 1.0], [2.0, 2.0, 2.1], [0.5, 0.4, 0.6], [-1.0, -1.0, -1.0], [0.0, 0.0, 3.0],
]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def direct_similarity(entries):
    values = [cosine(entries[i], entries[j])
              for i in range(len(entries)) for j in range(i + 1, len(entries))]
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def direct_perplexity(frames_logits):
    """exp(H(p_bar)) of one group; ``frames_logits``: list of per-frame logit lists."""
    probs = []
    for logits in frames_logits:
        exps = [math.exp(v) for v in logits]
        probs.append([e / sum(exps) for e in exps])
    average = [sum(p[k] for p in probs) / len(probs) for k in range(len(frames_logits[0]))]
    return math.exp(-sum(p * math.log(p) for p in average if p > 0))


def hand_set_quantizer():
    """Codebooks from ``HAND_SET``; ``weight_proj`` the identity, so that the
    logits of a frame are the frame itself (``input_dim = G * V``)."""
    quantizer = GumbelVectorQuantizer(GROUPS * ENTRIES, num_groups=GROUPS, num_vars=ENTRIES,
                                      codevector_dim=GROUPS * DIM)
    with torch.no_grad():
        quantizer.codevectors.copy_(torch.tensor(HAND_SET)[None])
        quantizer.weight_proj.weight.copy_(torch.eye(GROUPS * ENTRIES))
        quantizer.weight_proj.bias.zero_()
    return quantizer


def test_similarity_equals_the_direct_computation():
    quantizer = hand_set_quantizer()
    stats = codebook_similarity(quantizer)
    assert len(stats) == GROUPS
    for g in range(GROUPS):
        # layout: entry v of group g is codevectors[0, g * V + v]
        expected = direct_similarity(HAND_SET[g * ENTRIES:(g + 1) * ENTRIES])
        for key in ("mean", "min", "max"):
            assert stats[g][key] == pytest.approx(expected[key], abs=1e-6), (g, key)
    # the same from the raw tensor, and from a fairseq-named module (``vars``)
    raw = codebook_similarity(quantizer.codevectors, num_groups=GROUPS)
    assert raw == stats

    class FairseqLike(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.num_groups = GROUPS
            self.vars = torch.nn.Parameter(torch.tensor(HAND_SET)[None])

    assert codebook_similarity(FairseqLike()) == stats
    assert codebook_entries(quantizer).shape == (GROUPS, ENTRIES, DIM)


def test_per_group_perplexity_equals_the_explicit_formula():
    generator = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.randn(7, GROUPS, ENTRIES, generator=generator)
    prob, code = group_perplexities(logits)
    for g in range(GROUPS):
        assert float(prob[g]) == pytest.approx(direct_perplexity(logits[:, g].tolist()), rel=1e-5)
        # argmax counts: exp(H) of the frequencies of the chosen entries
        counts = {}
        for frame in logits[:, g].tolist():
            counts[frame.index(max(frame))] = counts.get(frame.index(max(frame)), 0) + 1
        frequencies = [c / 7 for c in counts.values()]
        assert float(code[g]) == pytest.approx(math.exp(-sum(f * math.log(f) for f in frequencies)),
                                               rel=1e-5)
    # the groups sum to what the quantizer logs (its prob_perplexity)
    quantizer = hand_set_quantizer().eval()
    with torch.no_grad():
        _, stats = quantizer(logits.reshape(7, GROUPS * ENTRIES))
    assert float(prob.sum()) == pytest.approx(float(stats["prob_perplexity"]), rel=1e-6)
    assert float(code.sum()) == pytest.approx(float(stats["code_perplexity"]), rel=1e-6)


class QuantizeTheInput(torch.nn.Module):
    """A stand-in objective: every ``G * V`` values of ``wav`` are one masked
    frame's logits; accuracy and loss are fixed per batch."""

    def __init__(self):
        super().__init__()
        self.quantizer = hand_set_quantizer()

    def forward(self, wav, wav_lens=None):
        frames = wav.reshape(-1, GROUPS * ENTRIES)
        self.quantizer(frames)
        accuracy = torch.tensor(frames.shape[0] / 10.0)
        return {"loss": torch.tensor(float(frames.shape[0])), "accuracy": accuracy,
                "time_mask": torch.ones(frames.shape[0], dtype=torch.bool)}


def test_validation_statistics_equal_the_direct_computation():
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randn(n, GROUPS * ENTRIES, generator=generator) for n in (3, 5, 8)]
    model = QuantizeTheInput().train()
    stats = validation_statistics(model, batches)
    assert model.training  # restored
    frames = [b.shape[0] for b in batches]
    # accuracy and loss: means over masked frames (batches weighted by their frames)
    assert stats["accuracy"] == pytest.approx(sum(n * n / 10.0 for n in frames) / sum(frames))
    assert stats["loss"] == pytest.approx(sum(n * n for n in frames) / sum(frames))
    assert stats["num_masked"] == sum(frames) and stats["num_batches"] == 3
    for g in range(GROUPS):
        per_batch = [direct_perplexity(b.view(-1, GROUPS, ENTRIES)[:, g].tolist()) for b in batches]
        assert stats[f"perplexity_{g}"] == pytest.approx(sum(per_batch) / 3, rel=1e-5)
        every_frame = [row for b in batches for row in b.view(-1, GROUPS, ENTRIES)[:, g].tolist()]
        assert stats[f"pooled_perplexity_{g}"] == pytest.approx(direct_perplexity(every_frame), rel=1e-5)
        expected = direct_similarity(HAND_SET[g * ENTRIES:(g + 1) * ENTRIES])
        assert stats[f"similarity_mean_{g}"] == pytest.approx(expected["mean"], abs=1e-6)
        assert stats[f"similarity_min_{g}"] == pytest.approx(expected["min"], abs=1e-6)
        assert stats[f"similarity_max_{g}"] == pytest.approx(expected["max"], abs=1e-6)


def test_on_the_contrastive_model():
    from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    torch.manual_seed(0)
    model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5, codevector_dim=32,
                                     final_dim=16, num_vars=8)
    batches = [torch.randn(2, 8000), torch.randn(3, 6000)]
    stats = validation_statistics(model, batches, seed=4)
    assert stats == validation_statistics(model, batches, seed=4)  # same masks every time
    # the model's own logs, run by hand under the same seeds and mode
    model.eval()
    logged, accuracy, frames = [], 0.0, 0
    with torch.no_grad():
        for i, wav in enumerate(batches):
            torch.manual_seed(4 + i)
            out = model(wav)
            logged.append(float(out["prob_perplexity"]))
            masked = int(out["time_mask"].sum())
            accuracy += float(out["accuracy"]) * masked
            frames += masked
    assert stats["perplexity_0"] + stats["perplexity_1"] == pytest.approx(sum(logged) / 2, rel=1e-5)
    assert stats["accuracy"] == pytest.approx(accuracy / frames)
    assert all(1.0 <= stats[f"perplexity_{g}"] <= 8.0 for g in range(2))


def test_over_checkpoints_writes_a_csv_and_a_figure(tmp_path):
    model = QuantizeTheInput()
    refs = []
    for run, scale in (("150s", 1.0), ("40min", -1.0)):
        for updates in (0, 100):
            state = {k: v.clone() for k, v in model.state_dict().items()}
            state["quantizer.codevectors"][0, 0] = scale * (1 + updates) * torch.tensor([1.0, 2.0, 3.0])
            refs.append(CheckpointRef(run, updates, updates / 36.0, state_dict=state))
    generator = torch.Generator().manual_seed(2)
    batches = [torch.randn(4, GROUPS * ENTRIES, generator=generator) for _ in range(2)]
    rows = codebook_statistics_over_checkpoints(refs, model, batches, tmp_path / "codebook.csv",
                                                tmp_path / "codebook.png", x="hours_seen")
    assert (tmp_path / "codebook.png").stat().st_size > 0
    read = read_rows(tmp_path / "codebook.csv")
    assert [r["run"] for r in read] == ["150s", "150s", "40min", "40min"]
    for ref, row, written in zip(refs, rows, read):
        entries = torch.tensor(HAND_SET)
        entries[0] = ref.state_dict["quantizer.codevectors"][0, 0]
        expected = direct_similarity(entries[:ENTRIES].tolist())
        assert written["similarity_mean_0"] == pytest.approx(expected["mean"], abs=1e-6)
        assert written["accuracy"] == pytest.approx(row["accuracy"])
        assert written["updates"] == ref.updates


def test_perplexity_of_one_group_is_the_quantizers_formula():
    """Per group: the quantizer's ``perplexity`` of that group alone."""
    generator = torch.Generator().manual_seed(3)
    probabilities = torch.softmax(torch.randn(9, GROUPS, ENTRIES, generator=generator), dim=-1)
    prob, _ = group_perplexities(torch.log(probabilities))
    assert float(prob[1]) == pytest.approx(float(perplexity(probabilities[:, 1:2])), rel=1e-5)
