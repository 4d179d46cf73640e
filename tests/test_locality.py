"""speechbrain_ext.analysis.locality against direct loops over frame pairs."""
import itertools

import pytest
import torch

from speechbrain_ext.analysis.locality import code_agreement, lagged_cosine


def _direct_cosine(features, lengths, lag):
    values = []
    for b, n in enumerate(lengths):
        x = features[b, :n].double()
        x = x - x.mean(0)
        for t in range(n - lag):
            values.append(float(torch.nn.functional.cosine_similarity(x[t], x[t + lag], dim=0)))
    return sum(values) / len(values)


def _direct_agreement(codes, lengths, lag):
    same = [int(codes[b, t, g] == codes[b, t + lag, g]) for b, n in enumerate(lengths)
            for t in range(n - lag) for g in range(codes.shape[2])]
    return sum(same) / len(same)


def _direct_chance(codes, lengths):
    same = [int(codes[b, s, g] == codes[b, t, g]) for b, n in enumerate(lengths)
            for g in range(codes.shape[2]) for s, t in itertools.permutations(range(n), 2)]
    return sum(same) / len(same)


def test_lagged_cosine_matches_loops_with_padding():
    torch.manual_seed(0)
    features = torch.randn(3, 12, 5).cumsum(1)  # random walks: strong short-lag structure
    lengths = [12, 7, 9]
    features[1, 7:] = 100.0  # padding must not enter the means or the pairs
    features[2, 9:] = -50.0
    result = lagged_cosine(features, [1, 3], torch.tensor(lengths))
    for lag in (1, 3):
        assert result[lag] == pytest.approx(_direct_cosine(features, lengths, lag), abs=1e-5)
    assert result[1] > result[3] > 0


def test_white_noise_has_no_structure_and_a_walk_has_some():
    torch.manual_seed(1)
    noise = lagged_cosine(torch.randn(4, 400, 16), [1, 2])
    walk = lagged_cosine(torch.randn(4, 400, 16).cumsum(1), [1, 2])
    assert abs(noise[1]) < 0.02 and abs(noise[2]) < 0.02
    assert walk[1] > 0.8


def test_code_agreement_matches_loops_with_groups_and_padding():
    torch.manual_seed(2)
    codes = torch.randint(0, 4, (3, 10, 2))
    codes[:, 1::2] = codes[:, ::2]  # every code repeated once: lag 1 agrees at least half the time
    lengths = [10, 6, 9]
    agreement, chance = code_agreement(codes, [1, 2, 5], torch.tensor(lengths))
    for lag in (1, 2, 5):
        assert agreement[lag] == pytest.approx(_direct_agreement(codes, lengths, lag))
    assert chance == pytest.approx(_direct_chance(codes, lengths))
    assert agreement[1] > chance


def test_code_agreement_of_independent_codes_is_chance():
    torch.manual_seed(3)
    codes = torch.randint(0, 8, (8, 500))
    agreement, chance = code_agreement(codes, [1, 7])
    assert chance == pytest.approx(1 / 8, abs=0.01)
    assert agreement[1] == pytest.approx(chance, abs=0.015)
    assert agreement[7] == pytest.approx(chance, abs=0.015)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="lag 5 must be in 1..4"):
        lagged_cosine(torch.randn(1, 5, 2), [5])
    with pytest.raises(ValueError, match="integer"):
        code_agreement(torch.randn(1, 5), [1])
    with pytest.raises(ValueError, match="lengths must be 2 frame counts"):
        code_agreement(torch.zeros(2, 5, dtype=torch.long), [1], torch.tensor([5, 6]))
