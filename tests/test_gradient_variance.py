"""Gradient noise of paper 001's Fig. 3 (``speechbrain_ext.analysis.gradient_variance``).

The analytic check: with the loss ``mean_b (w . x_b)`` over a batch of ``B``
inputs ``x_b ~ N(mu, diag(sigma^2))`` the gradient is the batch mean of the
inputs, ``g ~ N(mu, diag(sigma^2) / B)`` exactly, whatever ``w``. For
``n`` such gradients the sample std of coordinate ``j`` (ddof=1) has

    E[s_j]   = c4(n) sigma_j / sqrt(B),  c4(n) = sqrt(2/(n-1)) Gamma(n/2) / Gamma((n-1)/2)
    Var[s_j] = (1 - c4(n)^2) sigma_j^2 / B

and the coordinates are independent, so the tool's value (the mean of the
``s_j`` over the ``D`` coordinates) has expectation
``c4 mean(sigma) / sqrt(B)`` and standard deviation
``sqrt(1 - c4^2) rms(sigma) / sqrt(B D)``. The test allows 4 of those
standard deviations (0.7 % with the sizes below): a correct tool fails it
with probability about 6e-5 (and never, with the fixed seed), while the
nearest wrong definitions (ddof 0: -5.1 %; sqrt of the mean variance
instead of the mean std: +5.8 %; not removing the mean: x 2 and more) all
fall far outside it.
"""
import math

import numpy as np
import pytest
import torch

from speechbrain_ext.analysis.gradient_variance import (CheckpointRef, contrastive_loss,
                                                        gradient_std,
                                                        gradient_std_over_checkpoints,
                                                        group_into_updates, read_rows,
                                                        run_checkpoints)


def c4(n):
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def linear_loss(model, x):
    return model(x).mean()  # mean over the batch of w . x: the gradient is mean_b x_b


def gaussian_batches(mu, sigma, batch_size, count, generator):
    return [mu + sigma * torch.randn(batch_size, mu.numel(), generator=generator, dtype=torch.float64)
            for _ in range(count)]


@pytest.fixture
def problem():
    dim, batch_size, count = 20_000, 16, 10
    generator = torch.Generator().manual_seed(0)
    mu = 3.0 + 2.0 * torch.rand(dim, generator=generator, dtype=torch.float64)  # far from 0
    sigma = 0.5 + 1.5 * torch.rand(dim, generator=generator, dtype=torch.float64)  # U[0.5, 2]
    model = torch.nn.Linear(dim, 1, bias=False).double()
    return model, mu, sigma, batch_size, count, generator


def test_matches_the_analytic_gradient_noise(problem):
    model, mu, sigma, batch_size, count, generator = problem
    batches = gaussian_batches(mu, sigma, batch_size, count, generator)
    result = gradient_std(model, linear_loss, batches)
    dim = mu.numel()
    expected = c4(count) * float(sigma.mean()) / math.sqrt(batch_size)
    spread = math.sqrt(1 - c4(count) ** 2) * float(sigma.pow(2).mean().sqrt()) / math.sqrt(batch_size * dim)
    assert result.num_scalars == dim and result.num_batches == count
    assert abs(result.value - expected) < 4 * spread, (result.value, expected, spread)
    # the wrong definitions are far outside the tolerance
    root_mean_variance = float(sigma.pow(2).mean().sqrt()) / math.sqrt(batch_size)
    assert abs(root_mean_variance - expected) > 10 * spread
    # the signal: |mean gradient| is about mean(mu)
    assert result.mean_abs_gradient == pytest.approx(float(mu.mean()), rel=0.01)


def test_population_std_and_accumulation(problem):
    model, mu, sigma, batch_size, count, generator = problem
    dim = mu.numel()
    spread = math.sqrt(1 - c4(count) ** 2) * float(sigma.pow(2).mean().sqrt()) / math.sqrt(batch_size * dim)
    # ddof=0: E = sqrt((n-1)/n) c4 sigma / sqrt(B)
    batches = gaussian_batches(mu, sigma, batch_size, count, generator)
    population = gradient_std(model, linear_loss, batches, ddof=0)
    expected = math.sqrt((count - 1) / count) * c4(count) * float(sigma.mean()) / math.sqrt(batch_size)
    assert abs(population.value - expected) < 4 * spread
    # an update of 4 GPU batches of B/4: the averaged gradient has the noise of one batch of B
    updates = [list(gaussian_batches(mu, sigma, batch_size // 4, 4, generator)) for _ in range(count)]
    accumulated = gradient_std(model, linear_loss, updates, accumulate=True)
    expected = c4(count) * float(sigma.mean()) / math.sqrt(batch_size)
    assert abs(accumulated.value - expected) < 4 * spread


def test_equals_the_direct_computation_on_fixed_batches():
    """The definition spelled out: per scalar the std of its 10 gradients,
    then the mean over scalars (here the gradients are known: x's means)."""
    generator = torch.Generator().manual_seed(1)
    model = torch.nn.Linear(7, 1, bias=False).double()
    batches = [torch.randn(5, 7, generator=generator, dtype=torch.float64) * (1 + i)
               for i in range(10)]
    gradients = np.stack([b.mean(0).numpy() for b in batches])  # [10, 7]
    for ddof in (0, 1):
        direct = np.mean([np.std(gradients[:, j], ddof=ddof) for j in range(7)])
        assert gradient_std(model, linear_loss, batches, ddof=ddof).value == pytest.approx(direct, rel=1e-12)
    with pytest.raises(ValueError, match="need at least 2"):
        gradient_std(model, linear_loss, batches[:1])


class Noisy(torch.nn.Module):
    """Dropout, BatchNorm and a parameter the loss never reaches."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)
        self.norm = torch.nn.BatchNorm1d(4)
        self.unused = torch.nn.Parameter(torch.ones(3))
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.dropout(self.norm(self.layer(x))).pow(2).mean()


def test_leaves_the_model_and_the_random_state_alone():
    torch.manual_seed(0)
    model = Noisy().eval()
    batches = [torch.randn(8, 4) for _ in range(10)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.layer.weight.grad = torch.full_like(model.layer.weight, 7.0)
    rng = torch.get_rng_state()
    first = gradient_std(model, lambda m, x: m(x), batches)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights, BN stats
    assert torch.equal(model.layer.weight.grad, torch.full_like(model.layer.weight, 7.0))
    assert model.unused.grad is None and not model.training
    # the unused parameter is not counted; dropout runs (train mode) but seeded per batch
    assert first.num_scalars == 4 * 4 + 4 + 4 + 4
    assert "unused" not in first.per_tensor
    assert gradient_std(model, lambda m, x: m(x), batches).value == first.value
    assert gradient_std(model, lambda m, x: m(x), batches, seed=1).value != first.value


def test_on_the_contrastive_model():
    from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    torch.manual_seed(0)
    model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5, codevector_dim=32,
                                     final_dim=16, num_vars=8)
    batches = [torch.randn(2, 8000) for _ in range(3)]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    mean = gradient_std(model, contrastive_loss("mean"), batches)
    total = gradient_std(model, contrastive_loss("sum"), batches)
    assert 0 < mean.value < total.value and math.isfinite(total.value)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_over_checkpoints_writes_a_csv_and_a_figure(tmp_path):
    generator = torch.Generator().manual_seed(2)
    model = torch.nn.Linear(5, 1).double()
    refs = []
    for run in ("150s", "5min"):
        for updates in (0, 5000, 10000):
            state = {k: torch.randn(v.shape, generator=generator, dtype=v.dtype)
                     for k, v in model.state_dict().items()}
            refs.append(CheckpointRef(run, updates, updates / 1000.0, state_dict=state))
    batches = {run: [torch.randn(4, 5, generator=generator, dtype=torch.float64) for _ in range(10)]
               for run in ("150s", "5min")}
    loss = lambda m, x: m(x).pow(2).mean()  # noqa: E731 - the gradient depends on the weights
    rows = gradient_std_over_checkpoints(refs, model, loss, batches, tmp_path / "gradvar.csv",
                                         tmp_path / "gradvar.png", x="hours_seen")
    assert (tmp_path / "gradvar.png").stat().st_size > 0
    read = read_rows(tmp_path / "gradvar.csv")
    assert [(r["run"], r["updates"]) for r in read] == [(r.run, r.updates) for r in refs]
    for ref, row, written in zip(refs, rows, read):
        model.load_state_dict(ref.state_dict)
        direct = gradient_std(model, loss, batches[ref.run]).value
        assert written["gradient_std"] == pytest.approx(direct) and row["gradient_std"] == direct


def test_run_checkpoints_reads_a_recipe_save_folder(tmp_path):
    from speechbrain_ext.models.registry import build_backbone, save_backbone

    save = tmp_path / "run" / "save"
    model = torch.nn.Linear(3, 1)
    for name, updates in (("CKPT+b", 200), ("CKPT+a", 100)):
        folder = save / name
        folder.mkdir(parents=True)
        (folder / "CKPT.yaml").write_text(f"unixtime: {updates}\nend-of-epoch: false\n")
        torch.save(model.state_dict(), folder / "model.ckpt")
        save_backbone(build_backbone({"zoo": "w2v2_micro"}), folder / "backbone.ckpt",
                      metadata={"hours_seen": updates / 10, "updates": updates})
        (folder / "COMPLETE").write_text("")
    refs = run_checkpoints(save)
    assert [(r.run, r.updates, r.hours_seen) for r in refs] == [("run", 100, 10.0), ("run", 200, 20.0)]
    rows = gradient_std_over_checkpoints(refs, model, lambda m, x: m(x).pow(2).mean(),
                                         [torch.randn(4, 3) for _ in range(10)], tmp_path / "g.csv")
    assert [r["updates"] for r in rows] == [100, 200]


def test_group_into_updates():
    assert group_into_updates(iter([[1], [2], [3], [4]]), 2, num_updates=2) == [[[1], [2]], [[3], [4]]]
    with pytest.raises(ValueError, match="only 1 full updates"):
        group_into_updates([[1], [2], [3]], 2, num_updates=2)
