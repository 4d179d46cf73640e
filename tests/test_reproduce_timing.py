"""speechbrain_ext.reproduce.timing: the timing cells (paper 003 Tables 2 and 3,
paper 002's inference times) measured end to end at micro scale through the
CLI, an out-of-memory measurement as OOM, a precision this device cannot run
as "not measurable here", and paper-scale dry runs that measure nothing.
Micro models, one or two timed steps: a few seconds each."""
import json

import pytest

from speechbrain_ext.analysis import resources
from speechbrain_ext.reproduce import timing
from speechbrain_ext.reproduce.__main__ import main
from speechbrain_ext.reproduce.chain import Options, plan_cell
from speechbrain_ext.reproduce.registry import find_cells


def run(tmp_path, *names, scale="micro", corpora_root=None):
    """``main`` at ``scale`` (micro: --quick); returns (records, printed text)."""
    lines = []
    argv = [*names, "--output_root", str(tmp_path / "runs"), "--results", str(tmp_path / "results.jsonl")]
    if scale == "micro":
        argv += ["--scale", "micro", "--quick"]
    if corpora_root:
        argv += ["--corpora_root", str(corpora_root)]
    records = main(argv, out=lines.append)
    return records, "\n".join(lines)


def cell_line(text, row, column):
    return next(l for l in text.splitlines() if f"| {row} | {column} |" in l)


def test_table2_cell_measured_at_micro_scale(tmp_path):
    records, text = run(tmp_path, "paper003", "table2", "RTX 2080Ti 1s", "B2 FP32")
    record, = records
    line = cell_line(text, "RTX 2080Ti 1s", "B2 FP32")
    where = "measured on cuda" if timing.default_device() == "cuda" else "measured on cpu"
    assert record["scale"] == "micro" and record["ours"] > 0 and record["paper_printed"] == "0.10"
    assert f"paper 0.10 | ours {record['ours']:g} (micro scale; {where}" in line
    assert "paper's device: RTX 2080Ti" in line and "model w2v2_micro" in line and "difference" in line
    assert record["steps"][0].startswith("(in-process) timing metric")
    assert "only shows that the chain runs" in text


def test_an_out_of_memory_measurement_is_oom(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise resources.torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(resources, "training_step", out_of_memory)
    records, text = run(tmp_path, "paper003", "table2", "Xavier AGX 5s", "B8 FP32")  # paper: 1.84
    line = cell_line(text, "Xavier AGX 5s", "B8 FP32")
    assert "paper 1.84 | ours OOM (micro scale;" in line and "out of memory: CUDA out of memory" in line
    assert "memory capped at 16 GiB" in line and "difference" not in line
    record, = records
    assert record["difference"] is None
    saved = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert saved["ours"] == "OOM"  # no number in the results file (and valid JSON: no NaN)
    report = []
    main(["--report", "--results", str(tmp_path / "results.jsonl")], out=report.append)
    assert "| Xavier AGX 5s | B8 FP32 | 1.84 | OOM | micro only | - |" in report[0]
    # a cell the paper printed as OOM too
    _, text = run(tmp_path, "paper003", "table2", "RTX 2080Ti 15s", "B4 FP32")
    assert "paper OOM | ours OOM" in cell_line(text, "RTX 2080Ti 15s", "B4 FP32")


def test_a_precision_this_device_cannot_run_is_not_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "precision_support",
                        lambda precision, device: None if precision == "fp32" else "no fp16 autocast here")
    records, text = run(tmp_path, "paper003", "table2", "Xavier NX 1s", "B1 Mixed")
    assert records == []
    line = cell_line(text, "Xavier NX 1s", "B1 Mixed")
    assert "paper 0.35 | no value: not measurable here: no fp16 autocast here" in line
    assert "paper's device: Xavier NX" in line


def test_table3_row_batch_and_a_step_at_micro_scale(tmp_path):
    records, text = run(tmp_path, "paper003", "table3", "KWS", "B")
    assert records[0]["ours"] == 32.0  # resources.TABLE3_TASKS's, which the step cells use
    assert "the downstream YAMLs: kws 32" in cell_line(text, "KWS", "B")
    records, text = run(tmp_path, "paper003", "table3", "ER", "AGX unfrozen")
    record, = records
    line = cell_line(text, "ER", "AGX unfrozen")
    assert record["scale"] == "micro" and record["ours"] > 0
    assert f"paper 1.23 | ours {record['ours']:g} (micro scale;" in line
    assert "paper's device: Jetson Xavier AGX" in line and "ER 4.6 s x 4" in line
    assert (tmp_path / "runs" / "micro" / "timing" / "w2v2_micro.ckpt").is_file()  # the random upstream


def test_paper002_inference_time_at_micro_scale(tmp_path, mini_corpus):
    mini_root, _ = mini_corpus
    records, text = run(tmp_path, "paper002", "table6", "8", "infer (s)", corpora_root=mini_root)
    record, = records
    line = cell_line(text, "8", "infer (s)")
    assert record["scale"] == "micro" and record["ours"] > 0
    assert f"paper 7.5 ± 0.02 | ours {record['ours']:g} (micro scale;" in line
    assert "paper's device: V100" in line and f"{timing.QUICK_UTTERANCES} dev-clean utterances" in line
    assert "model sewd_micro" in line
    # without dev-clean there is no number
    records, text = run(tmp_path, "paper002", "table6", "8", "infer (s)", corpora_root=tmp_path / "none")
    assert records == [] and "not measurable here: no LibriSpeech dev-clean" in text
    assert "python -m data_prep.synthetic" in text


def test_paper_scale_dry_run_measures_nothing(tmp_path, monkeypatch):
    def no_measuring(*args, **kwargs):
        raise AssertionError("a dry run measured something")

    monkeypatch.setattr(resources, "call", no_measuring)
    monkeypatch.setattr(timing, "time_inference", no_measuring)
    for names in (("paper003", "table2", "RTX 2080Ti 15s"), ("paper003", "table3", "ASR"),
                  ("paper002", "table1", "W2V2-base", "infer (s)")):
        records, text = run(tmp_path, *names, "--dry-run", scale="paper")
        assert records == [] and "(in-process) timing metric" in text and "w2v2_base" in text, text
    # Table 2's RPi4 mixed cells were not run in the paper: no chain to run
    _, text = run(tmp_path, "paper003", "table2", "RPi4 5s", "B4 Mixed", "--dry-run", scale="paper")
    assert "not run in the paper" in text
    # what paper scale would measure: the registry's model and settings; micro: the micro model
    cell, = find_cells("paper003", "table2", "RTX 2080Ti 15s", "B12 Mixed")
    step, = plan_cell(cell, Options(scale="paper", output_root=str(tmp_path)))
    paper = timing.measurement(step.spec, "paper", device="cpu")
    assert (paper["model"], paper["seconds"], paper["batch"], paper["precision"]) == ("w2v2_base", 15.0, 12, "fp16")
    assert (paper["warmup"], paper["repeats"]) == (resources.DEFAULTS["warmup"], resources.DEFAULTS["repeats"])
    assert timing.measurement(step.spec, "micro", device="cpu")["model"] == "w2v2_micro"
    cell, = find_cells("paper002", "table6", "5", "infer (s)")  # a SEW backbone: its micro is SEW's
    assert timing.measurement(cell.chain[0], "micro", device="cpu")["model"] == "sew_micro"
    assert timing.measurement(cell.chain[0], "paper", device="cpu")["utterances"] is None  # all of dev-clean


@pytest.mark.parametrize("paper,table", [("paper003", "table2"), ("paper003", "table3"), ("paper002", "table1"),
                                         ("paper002", "table2"), ("paper002", "table3"), ("paper002", "table4"),
                                         ("paper002", "table6")])
def test_every_timing_cell_is_runnable_with_a_valid_spec(paper, table):
    cells = [c for c in find_cells(paper, table) if c.chain and c.chain[-1].get("source") == "timing"]
    assert cells and all(c.runnable for c in cells if "not run in the paper" not in c.status)
    for c in cells:  # every key the measurement needs is set (a typo in the YAML fails here)
        timing.measurement(c.chain[-1], "paper", device="cpu")
