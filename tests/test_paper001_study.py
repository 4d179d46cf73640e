"""The micro batch-size study command (benchmarks/batch_size_study.py) at a
tiny setting: its plumbing (pretrain -> analyse -> report), resuming, and
its refusal of settings that cannot work. The study itself is not run here."""
import csv
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "batch_size_study.py"
TINY_MODEL = {"conv_layers": [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 2, 2],
                              [32, 2, 2]], "dim": 32, "num_layers": 2, "num_heads": 2, "ffn_dim": 64,
              "pos_conv_kernel": 16, "pos_conv_groups": 4, "layerdrop": 0.0}


def load_study():
    spec = importlib.util.spec_from_file_location("batch_size_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(tmp_path, mini_root, **changes):
    config = yaml.safe_load((REPO / "benchmarks" / "batch_size_study.yaml").read_text())
    config.update(
        data_folder=str(mini_root / "LibriSpeech"), hours_seen=0.02, lr_heuristics=["sub"], checkpoints=2, gpu_batch_seconds=6.0,
        runs={"6s": {"seconds_per_update": 6.0, "grad_accumulation_factor": 1},
              "12s": {"seconds_per_update": 12.0, "grad_accumulation_factor": 2}},
        overrides={"backbone_config": TINY_MODEL, "bin_size": 50, "valid_batch_size": 4, "log_interval": 1},
        gradient_variance={"batches": 3, "seed": 7, "ddof": 1}, codebook={"max_batches": 2, "batch_size": 4},
        probe={"enabled": True, "epochs": 1, "lr": 0.001, "batch_size": 256, "layer": "weighted",
               "random_seeds": [0], "max_train_seconds": 20, "max_test_seconds": 10, "seed": 0})
    config.update(changes)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_bad_settings_are_refused_naming_the_key(tmp_path, mini_root):
    study = load_study()
    with pytest.raises(study.StudyError, match=r"runs.12s: hours_seen=0.021 .* not a whole number"):
        study.load_config(tiny_config(tmp_path, mini_root, hours_seen=0.021))
    with pytest.raises(study.StudyError, match=r"seconds_per_update=12 is not grad_accumulation_factor=2 "
                                               r"x gpu_batch_seconds=5"):
        study.load_config(tiny_config(tmp_path, mini_root, gpu_batch_seconds=5.0, hours_seen=0.1))
    with pytest.raises(study.StudyError, match="unknown key.*batch_sizes"):
        study.load_config(tiny_config(tmp_path, mini_root, batch_sizes=[1]))
    with pytest.raises(study.StudyError, match="lr_heuristics of runs.12s: 'cosine' is not a heuristic; known: lin, sub, const"):
        study.load_config(tiny_config(tmp_path, mini_root, lr_heuristics=["sub", "cosine"]))
    # the default (micro) study: same hours for each run, a whole number of updates per checkpoint
    config = study.load_config(REPO / "benchmarks" / "batch_size_study.yaml")
    plans = {name: study.plan_run(config, name) for name in config["runs"]}
    assert {n: p["updates"] for n, p in plans.items()} == {"20s": 288, "40s": 144, "80s": 72}


@pytest.mark.slow
def test_the_study_runs_end_to_end_and_resumes(tmp_path, mini_root):
    from data_prep.synthetic import generate

    generate(mini_root, size="mini", corpora=["librispeech"], log=lambda *a: None)
    study = load_study()
    config_path = tiny_config(tmp_path, mini_root)
    out = tmp_path / "out"
    study.main(["--config", str(config_path), "--out", str(out)])
    report = out / "report"
    for name in ("table2.csv", "gradient_std.csv", "gradient_std.png", "codebook.csv", "codebook.png",
                 "probe_vs_hours.csv", "probe_vs_hours.png", "report.md"):
        assert (report / name).is_file(), name
    with open(report / "gradient_std.csv") as f:
        grads = list(csv.DictReader(f))
    # update 0 (the shared initial weights) and the 2 kept checkpoints of each run
    assert sorted((r["run"], int(r["updates"])) for r in grads) == [
        ("12s", 0), ("12s", 3), ("12s", 6), ("6s", 0), ("6s", 6), ("6s", 12)]
    assert all(float(r["gradient_std"]) > 0 for r in grads)
    # the same initial weights: an update of 2 GPU batches has the less noisy gradient (Fig. 3)
    at_init = {r["run"]: float(r["gradient_std"]) for r in grads if int(r["updates"]) == 0}
    assert at_init["12s"] < at_init["6s"]
    with open(report / "table2.csv") as f:
        table2 = {(r["run"], int(r["updates"])): r for r in csv.DictReader(f)}
    # checkpoint k of each run saw the same upper-bound hours (0.01 h, 0.02 h)
    assert float(table2[("6s", 6)]["upper_bound_hours"]) == pytest.approx(float(table2[("12s", 3)]["upper_bound_hours"]))
    assert float(table2[("6s", 12)]["upper_bound_hours"]) == pytest.approx(0.02)
    assert all(0 < float(r["measured_hours"]) <= float(r["upper_bound_hours"]) for r in table2.values())
    with open(report / "probe_vs_hours.csv") as f:
        probed = list(csv.DictReader(f))
    assert len(probed) == 4 and all(0 <= float(r["phone_accuracy"]) <= 1 for r in probed)
    text = (report / "report.md").read_text()
    assert "## Table 2" in text and "falls with batch size" in text and "spread" in text
    assert "| 6s | **sub** | 0.000194 |" in text  # h_sub at 6 s from 5e-4 at 40 s, the run analysed
    # resuming: nothing is recomputed (the caches and the runs are reused)
    caches = {p: p.stat().st_mtime_ns for p in (out / "analysis").glob("*.json")}
    logs = {p: p.stat().st_size for p in (out / "logs").glob("*.log")}
    study.main(["--config", str(config_path), "--out", str(out)])
    assert {p: p.stat().st_mtime_ns for p in caches} == caches
    assert {p: p.stat().st_size for p in logs} == logs
    # a changed analysis setting redoes that analysis only; fine-tuning (Fig. 4's
    # WER), switched on, fine-tunes the last checkpoint of the run asked for
    cached = json.loads((out / "analysis" / "6s_6.json").read_text())
    finetune = dict(yaml.safe_load((REPO / "benchmarks" / "batch_size_study.yaml").read_text())["finetune"],
                    enabled=True, checkpoints="last", runs=["12s"])
    finetune["overrides"] = dict(finetune["overrides"], max_updates=1, max_train_seconds=8,
                                 freeze_encoder_updates=1)
    study.main(["--config", str(tiny_config(tmp_path, mini_root, finetune=finetune, gradient_variance={
        "batches": 2, "seed": 7, "ddof": 1})), "--out", str(out), "--stages", "analyse", "report"])
    again = json.loads((out / "analysis" / "6s_6.json").read_text())
    assert again["gradient_std"] != cached["gradient_std"] and again["probe_stats"] == cached["probe_stats"]
    assert sorted(p.name for p in (out / "analysis").glob("*_finetune.json")) == ["12s_6_finetune.json"]
    with open(report / "finetune_vs_hours.csv") as f:
        (tuned,) = list(csv.DictReader(f))
    assert tuned["run"] == "12s" and 0 <= float(tuned["finetune_metric"]) and (report / "finetune_vs_hours.png").is_file()
