"""speechbrain_ext.analysis.resources: the resource sweep of paper 003
section 5 (seconds, memory, FLOPs against length, batch and precision).
Micro models, tiny sweeps."""
import csv

import pytest
import torch

from speechbrain_ext.analysis import resources

COMMON = {"device": "cpu", "warmup": 0, "repeats": 1, "layerdrop": 0.0, "seed": 0,
          "memory_fraction": None, "sample_ms": 5, "threads": None}


def cell(**overrides):
    spec = {**COMMON, "part": "pretrain", "model": "w2v2_micro", "objective": "backbone",
            "task": "", "batch": 2, "seconds": 1.0, "precision": "fp32"}
    spec.update(overrides)
    return spec


def oom_at(monkeypatch, batch, seconds, error):
    """Make every training step on a [batch, seconds] batch raise ``error``."""
    real = resources.training_step

    def step(work, wav, lens, precision, scaler):
        if tuple(wav.shape) == (batch, int(seconds * resources.SAMPLE_RATE)):
            raise error
        return real(work, wav, lens, precision, scaler)

    monkeypatch.setattr(resources, "training_step", step)


def test_an_oom_cell_does_not_stop_the_sweep(monkeypatch):
    oom_at(monkeypatch, 4, 2.0, RuntimeError(
        "[enforce fail at alloc_cpu.cpp:118] data. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 123456789 bytes"))
    specs = resources.pretrain_specs("w2v2_micro", ["backbone"], [1.0, 2.0], [2, 4], ["fp32"],
                                     COMMON)
    lines = []
    rows = resources.sweep(specs, isolate=False, log=lambda *a, **k: lines.append(a[0]))
    resources.finish_rows(rows, "test CPU")
    status = {(r["batch"], r["seconds"]): r["status"] for r in rows}
    assert status == {(2, 1.0): "ok", (4, 1.0): "ok", (2, 2.0): "ok", (4, 2.0): "OOM"}
    for row in rows:
        if row["status"] == "ok":
            assert row["s_per_batch"] > 0 and row["peak_mib"] is not None
            assert row["gflops"] > 0 and row["audio_s_per_s"] > 0 and not row["flops_estimated"]
    oom = next(r for r in rows if r["status"] == "OOM")
    assert oom.get("s_per_batch") is None and "DefaultCPUAllocator" in oom["note"]
    # its FLOPs: B=2's at the same length, scaled (flagged)
    b2 = next(r for r in rows if (r["batch"], r["seconds"]) == (2, 2.0))
    assert oom["flops_estimated"] and oom["gflops"] == pytest.approx(2 * b2["gflops"])
    # progress lines: "cell i of n" and a time estimate
    assert len(lines) == 4 and lines[-1].startswith("[cell 4/4]") and "left" in lines[0]
    table = resources.table2(rows, "backbone", "s_per_batch", "CPU")
    assert table.splitlines()[0] == "| Device | Length | B=2 fp32 | B=4 fp32 |"
    last = table.splitlines()[-1].split("|")
    assert last[2].strip() == "2s" and last[4].strip() == "OOM" and float(last[3]) > 0
    # the FLOPs table keeps the estimate, marked
    assert resources.table2(rows, "backbone", "gflops", "CPU").splitlines()[-1].rstrip(" |") \
        .endswith("*")


def test_larger_cells_than_an_oom_are_inferred_or_run(monkeypatch):
    oom_at(monkeypatch, 2, 2.0, torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    specs = resources.pretrain_specs("w2v2_micro", ["backbone"], [2.0], [2, 3], ["fp32"], COMMON)
    quiet = {"isolate": False, "log": lambda *a, **k: None}
    inferred = resources.sweep(specs, **quiet)
    assert [r["status"] for r in inferred] == ["OOM", "OOM"]
    assert inferred[1]["note"].startswith("inferred")
    ran = resources.sweep(specs, infer_oom=False, **quiet)
    assert [r["status"] for r in ran] == ["OOM", "ok"]


def test_what_counts_as_out_of_memory():
    assert resources.is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert resources.is_oom(RuntimeError("CUDA error: out of memory"))
    assert resources.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert resources.is_oom(MemoryError())
    assert not resources.is_oom(RuntimeError("shape mismatch"))
    assert not resources.is_oom(ValueError("out of memory"))


@pytest.mark.parametrize("input_grad", [True, False])
def test_flops_of_a_linear_layer_equal_a_hand_count(input_grad):
    batch, frames, d_in, d_out = 3, 7, 16, 24
    layer = torch.nn.Linear(d_in, d_out)
    x = torch.randn(batch, frames, d_in, requires_grad=input_grad)
    total, counts = resources.count_training_flops(lambda: layer(x).sum())
    # a matrix product [M, K] x [K, N] is M * N * K multiply-adds = 2 M N K FLOPs;
    # the bias add and the sum are not counted
    forward = 2 * (batch * frames) * d_in * d_out
    weight_grad = 2 * d_in * (batch * frames) * d_out  # x^T [d_in, BT] x dY [BT, d_out]
    input_grad_flops = 2 * (batch * frames) * d_out * d_in  # dY [BT, d_out] x W [d_out, d_in]
    assert total == forward + weight_grad + (input_grad_flops if input_grad else 0)
    assert total == (3 if input_grad else 2) * 2 * batch * frames * d_in * d_out


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_flops_of_a_grouped_convolution_equal_a_hand_count(groups):
    batch, channels, samples, kernel = 2, 32, 50, 5
    conv = torch.nn.Conv1d(channels, channels, kernel, groups=groups, bias=False)
    x = torch.randn(batch, channels, samples, requires_grad=True)
    total, _ = resources.count_training_flops(lambda: conv(x).sum())
    frames = samples - kernel + 1
    # each output value: channels / groups inputs x kernel taps multiply-adds
    forward = 2 * batch * frames * channels * (channels // groups) * kernel
    # input gradient and weight gradient: the same multiply-adds again, each
    # (torch 2.11's own formula gives 3 + (groups - 1) times the forward)
    assert total == 3 * forward


def test_wav2vec2_flops_scale_with_length():
    short, long = resources.run_ratio("w2v2_micro", "backbone", [1.0, 3.0], batch=1, device="cpu")
    assert (short["frames"], long["frames"]) == (49, 149)
    config = resources.zoo_backbone_config("w2v2_micro")
    for row in (short, long):
        # QK^T and AV: 2 T^2 D FLOPs each forward, twice that backward, per layer
        frames = row["frames"]
        assert row["attention"] == config.num_layers * 3 * 2 * (2 * frames * frames * config.dim)
        assert 0 < row["cnn"] < row["flops"] and row["cnn"] + row["rest"] == row["flops"]
    frames = long["frames"] / short["frames"]
    # the CNN's work follows the samples (each conv layer's output length)
    assert long["cnn"] / short["cnn"] == pytest.approx(3.0, rel=0.01)
    # the attention grows with frames squared, the rest of the transformer
    # linearly: the transformer (+ projection) sits between the two
    assert frames * 0.99 < long["rest"] / short["rest"] < frames ** 2
    assert 3.0 * 0.99 < long["flops"] / short["flops"] < frames ** 2
    text = "\n".join(resources.ratio_text({"model": "w2v2_micro", "objective": "backbone",
                                           "batch": 1, "device": "cpu", "rows": [short, long]}))
    assert "ratio 3 s / 1 s" in text and "paper 003" in text


@pytest.mark.parametrize("precision", resources.PRECISIONS)
def test_every_precision_runs_on_the_cpu(precision):
    if precision == "fp16" and resources.fp16_cpu_support():
        pytest.skip(resources.fp16_cpu_support())
    result = resources.run_cell(cell(objective="contrastive", precision=precision,
                                     count_flops=True))
    assert result["status"] == "ok", result
    assert result["s_per_batch"] > 0 and result["flops"] > 0
    assert torch.isfinite(torch.tensor(result["loss"]))


@pytest.mark.parametrize("part, objective", [("pretrain", "noncontrastive"),
                                              ("downstream", "frozen"),
                                              ("downstream", "unfrozen")])
def test_the_other_workloads_run(part, objective, tmp_path):
    checkpoint = resources.make_checkpoint("w2v2_micro", tmp_path) if part == "downstream" else None
    result = resources.run_cell(cell(part=part, objective=objective, checkpoint=checkpoint,
                                     combine="weighted", task="KWS", count_flops=True))
    assert result["status"] == "ok", result
    if part == "downstream":
        work = resources.Workload(part, "w2v2_micro", objective, checkpoint=checkpoint)
        backbone_trains = any(p.requires_grad for p in work.net["upstream"].backbone.parameters())
        assert backbone_trains == (objective == "unfrozen")
        assert work.net["upstream"].layer_sum is not None  # the weighted layer sum, both modes


def test_a_noncontrastive_batch_of_one_is_not_applicable():
    rows = resources.sweep([cell(objective="noncontrastive", batch=1)], log=lambda *a, **k: None)
    assert rows[0]["status"] == "n/a"


def test_an_isolated_cell_measures_its_own_peak():
    result = resources.call("run_cell", {"spec": cell(batch=2, seconds=1.0)}, isolate=True,
                            threads=1, timeout=300)
    assert result["status"] == "ok", result
    assert result["memory_method"] == "VmHWM (clear_refs reset)"
    # weights, gradients, AdamW state and activations of a micro step: MiBs, not the
    # ~0.3 GB of the interpreter and torch
    assert 1 < result["peak_mib"] < 200 and 0 < result["step_mib"] <= result["peak_mib"]


def test_peak_table_and_override():
    assert resources.peak_tflops_for("NVIDIA H200", "bf16") == pytest.approx(989.4)
    assert resources.peak_tflops_for("NVIDIA H100 PCIe", "bf16") == pytest.approx(756.0)
    assert resources.peak_tflops_for("NVIDIA A100-SXM4-80GB", "fp16") == pytest.approx(312.0)
    assert resources.peak_tflops_for("Tesla V100-SXM2-32GB", "bf16") is None
    assert resources.peak_tflops_for("Some GPU", "fp32") is None
    assert resources.peak_tflops_for("Some GPU", "fp32", override=50) == 50.0


def test_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resources.resolve_threads(None) == 3 and resources.resolve_threads(2) == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resources.resolve_threads(None) is None


def test_the_cli_writes_csv_markdown_and_figures(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        assert resources.main(["--quick", "--model", "w2v2_micro", "--isolate", "none",
                               "--lengths", "1", "--batches", "2", "--precisions", "fp32", "bf16",
                               "--parts", "pretrain", "downstream", "timeline",
                               "--downstream_tasks", "KWS:2:1", "ER:2:1.5", "--timeline_steps",
                               "2", "--repeats", "1", "--out", str(tmp_path),
                               "--tag", "t"]) == 0
    finally:
        torch.set_num_threads(threads)
    for name in ("t_pretrain.csv", "t_downstream.csv"):
        with open(tmp_path / name) as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        assert reader.fieldnames == resources.CSV_COLUMNS
        assert rows and all(r["status"] == "ok" and float(r["s_per_batch"]) > 0 for r in rows)
        assert all(float(r["gflops"]) > 0 and float(r["audio_s_per_s"]) > 0 for r in rows)
    with open(tmp_path / "t_downstream.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["task"], r["objective"], r["precision"]) for r in rows} == {
        (t, m, p) for t in ("KWS", "ER") for m in ("frozen", "unfrozen") for p in ("fp32", "bf16")}
    md = (tmp_path / "t.md").read_text()
    assert "Table 2 layout" in md and "Table 3 layout" in md
    assert "| Device | Length | B=2 fp32 | B=2 bf16 |" in md
    assert "| Tasks | B | length | Froz. fp32 (CPU) | Unfroz. fp32 (CPU) | Froz. bf16 (CPU) | " \
           "Unfroz. bf16 (CPU) |" in md
    assert "| KWS | 2 | 1s |" in md and "| ER | 2 | 1.5s |" in md
    for name in ("t_fig2.png", "t_fig3.png", "t_timeline.csv"):
        assert (tmp_path / name).stat().st_size > 0
    out = capsys.readouterr().out
    assert "[cell 1/10]" in out and "[timeline] KWS frozen" in out
