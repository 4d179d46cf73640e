"""Paper 001's learning-rate heuristics and Table 1 settings
(``speechbrain_ext.training.lr_heuristics``), and the cyclic schedule the
learning rates are the maximum of."""
import doctest
import math

import pytest

from speechbrain_ext.training import lr_heuristics
from speechbrain_ext.training.lr_heuristics import (TABLE1, learning_rate, setting,
                                                    split_batch)
from speechbrain_ext.training.schedules import CyclicTriangular

# Table 1 as printed: seconds -> (h_const, h_sub, h_lin), None where "-"
PRINTED = {
    87.5: ("5.00e-4", "6.04e-5", "7.29e-6"),
    150: ("5.00e-4", "7.91e-5", "1.25e-5"),
    300: ("5.00e-4", "1.12e-4", "2.50e-5"),
    600: ("5.00e-4", "1.58e-4", "5.00e-5"),
    1200: ("5.00e-4", "2.24e-4", "1.00e-4"),
    2400: ("5.00e-4", "3.16e-4", "2.00e-4"),
    4800: ("5.00e-4", None, None),
}
# bold (lowest validation loss) entries, and the printed GPUs x accumulation
BEST = {87.5: "sub", 150: "sub", 300: "sub", 600: "sub", 1200: "sub", 2400: "const", 4800: "const"}
GPUS_ACC = {87.5: (1, 1), 150: (1, 1), 300: (1, 2), 600: (4, 1), 1200: (2, 4), 2400: (4, 4),
            4800: (8, 4)}


def printed(value):
    """The helper's value in the paper's print format (3 significant digits)."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@pytest.mark.parametrize("seconds", sorted(PRINTED))
def test_every_printed_learning_rate_matches_the_helper(seconds):
    for heuristic, text in zip(("const", "sub", "lin"), PRINTED[seconds]):
        if text is None:
            continue
        assert printed(learning_rate(heuristic, seconds)) == text, (seconds, heuristic)
        # and within half a unit of the printed last digit
        value = float(text)
        assert abs(learning_rate(heuristic, seconds) - value) <= 0.5 * 10 ** (
            math.floor(math.log10(value)) - 2) + 1e-15


def test_the_formulas():
    assert learning_rate("lin", 3000) == pytest.approx(2.5e-4)
    assert learning_rate("sub", 1500) == pytest.approx(2.5e-4)  # sqrt(1/4)
    assert learning_rate("const", 87.5) == 5e-4
    assert learning_rate("h_sub", 600) == learning_rate("sqrt", 600) == learning_rate("sub", 600)
    assert learning_rate(" Linear ", 600) == learning_rate("lin", 600)


def test_unknown_heuristic_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="unknown learning-rate heuristic 'cosine'.*lin, sub, const"):
        learning_rate("cosine", 150)
    with pytest.raises(ValueError, match="positive"):
        learning_rate("lin", 0)


def test_table1_rows_are_the_papers():
    assert [row.seconds for row in TABLE1] == sorted(PRINTED)
    for row in TABLE1:
        assert (row.gpus, row.accumulation) == GPUS_ACC[row.seconds]
        assert row.best == BEST[row.seconds]
        budget = 1_400_000 if row.seconds == 87.5 else 2_400_000
        assert row.max_samples_per_gpu == budget
        assert row.diversity_weight == (1 / 20 if row.seconds == 87.5 else 1 / 10)
        tried = {h for h, text in zip(("const", "sub", "lin"), PRINTED[row.seconds]) if text}
        assert set(row.tried) == tried
        assert set(row.learning_rates()) == tried
    assert setting("80min") is TABLE1[-1] and setting(300) is TABLE1[2] and setting("87.5s") is TABLE1[0]
    # Section 4.2: "32 GPUs (80 minutes)" = 8 GPUs x 4 accumulation steps
    assert setting(4800).gpu_batches_per_update == 32
    with pytest.raises(ValueError, match="no Table 1 setting"):
        setting(100)


@pytest.mark.parametrize("row", TABLE1, ids=lambda r: r.label)
def test_table1_splits_pass(row):
    split = split_batch(row.seconds, row.gpus, row.accumulation, row.max_samples_per_gpu)
    assert split.samples_per_gpu_batch == row.max_samples_per_gpu
    assert split.seconds_per_update == pytest.approx(row.seconds)
    assert row.split() == split  # exact=True: every GPU batch is full


def test_a_non_dividing_split_is_refused():
    # 20 min on 3 GPUs x 3 steps: 19.2 M samples / 9 is not whole
    with pytest.raises(ValueError, match="do not divide into 9 equal GPU batches"):
        split_batch(1200, 3, 3, 2_400_000)
    # 10 min on 2 GPUs without accumulation: 4.8 M samples per GPU > 2.4 M
    with pytest.raises(ValueError, match="over the budget.*accumulation 2 would fit"):
        split_batch(600, 2, 1, 2_400_000)
    # fits but does not fill the GPU: only refused when exact
    assert split_batch(150, 2, 1, 2_400_000).samples_per_gpu_batch == 1_200_000
    with pytest.raises(ValueError, match="not exactly"):
        split_batch(150, 2, 1, 2_400_000, exact=True)
    with pytest.raises(ValueError, match="whole number of samples"):
        split_batch(1e-5, 1, 1, 2_400_000)
    with pytest.raises(ValueError, match="gpus must be a positive integer"):
        split_batch(150, 0, 1, 2_400_000)


def test_cyclic_schedule_is_the_papers():
    """8 cycles of 25k linear steps up and 25k down over the 400k updates,
    minimum = maximum / 100, starting at the minimum (torch ``CyclicLR``
    ``triangular``, as the paper's code configures it); the ends of the
    cycles (multiples of 50k) are at the minimum."""
    peak = learning_rate("sub", 150)
    schedule = CyclicTriangular(max_lr=peak)
    assert schedule.step_size == 25_000
    assert schedule.base_lr == pytest.approx(peak / 100)
    for cycle in range(8):
        start = cycle * 50_000
        assert schedule(start) == pytest.approx(peak / 100)
        assert schedule(start + 25_000) == pytest.approx(peak)
        assert schedule(start + 12_500) == pytest.approx((peak + peak / 100) / 2)
        assert schedule(start + 37_500) == pytest.approx((peak + peak / 100) / 2)
    assert schedule(400_000) == pytest.approx(peak / 100)
    # linear in between
    assert schedule(1_000) - schedule(0) == pytest.approx(1_000 * (peak - peak / 100) / 25_000)


def test_doctests():
    assert doctest.testmod(lr_heuristics, optionflags=doctest.ELLIPSIS).failed == 0
