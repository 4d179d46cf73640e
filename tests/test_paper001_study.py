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
    # and the SUPERB tasks (Fig. 5), switched on, run run_suite.py on that checkpoint
    superb = dict(yaml.safe_load((REPO / "benchmarks" / "batch_size_study.yaml").read_text())["superb"],
                  enabled=True, checkpoints="last", runs=["12s"], tasks=["kws12"],
                  corpora_root=str(mini_root), overrides={"backbone_config": TINY_MODEL, "number_of_epochs": 1})
    study.main(["--config", str(tiny_config(tmp_path, mini_root, finetune=finetune, superb=superb,
                                            gradient_variance={"batches": 2, "seed": 7, "ddof": 1})),
                "--out", str(out), "--stages", "analyse", "report"])
    again = json.loads((out / "analysis" / "6s_6.json").read_text())
    assert again["gradient_std"] != cached["gradient_std"] and again["probe_stats"] == cached["probe_stats"]
    assert sorted(p.name for p in (out / "analysis").glob("*_finetune.json")) == ["12s_6_finetune.json"]
    with open(report / "finetune_vs_hours.csv") as f:
        (tuned,) = list(csv.DictReader(f))
    assert tuned["run"] == "12s" and 0 <= float(tuned["finetune_metric"]) and (report / "finetune_vs_hours.png").is_file()
    assert sorted(p.name for p in (out / "analysis").glob("*_superb.json")) == ["12s_6_superb.json"]
    with open(report / "superb_vs_updates.csv") as f:
        (scored,) = list(csv.DictReader(f))
    assert (scored["run"], int(scored["updates"])) == ("12s", 6) and 0 <= float(scored["kws12_acc"]) <= 100
    assert float(scored["upper_bound_hours"]) == pytest.approx(0.02)
    assert (report / "superb_vs_updates.png").is_file()
    assert "| 12s | 6 | 0.02 | " in (report / "report.md").read_text()


def test_superb_is_off_by_default_and_its_settings_are_checked(tmp_path, mini_root):
    study = load_study()
    default = yaml.safe_load((REPO / "benchmarks" / "batch_size_study.yaml").read_text())["superb"]
    assert default["enabled"] is False and default["tasks"] == ["kws12"]
    assert study.checkpoint_targets({"superb": default}, "superb", "20s", [(72, "a"), (144, "b")]) == []
    on = dict(default, enabled=True)
    with pytest.raises(study.StudyError,
                       match=r"superb.tasks: 'kws7' is not a task of .*run_suite.py; known: kws12"):
        study.load_config(tiny_config(tmp_path, mini_root, superb=dict(on, tasks=["kws7"])))
    with pytest.raises(study.StudyError, match=r"superb.checkpoints must be 'all' or 'last', got 'first'"):
        study.load_config(tiny_config(tmp_path, mini_root, superb=dict(on, checkpoints="first")))
    # (the runs in the order of the YAML file, which safe_dump sorts)
    with pytest.raises(study.StudyError, match=r"superb.runs names '20s', not one of runs \(12s, 6s\)"):
        study.load_config(tiny_config(tmp_path, mini_root, superb=dict(on, runs=["20s"])))
    with pytest.raises(study.StudyError, match=r"superb: unknown key\(s\) task"):
        study.load_config(tiny_config(tmp_path, mini_root, superb=dict(on, task="kws12")))
    config = study.load_config(tiny_config(tmp_path, mini_root, superb=dict(on, checkpoints="last", runs=["12s"])))
    assert study.checkpoint_targets(config, "superb", "12s", [(3, "a"), (6, "b")]) == [(6, "b")]
    assert study.checkpoint_targets(config, "superb", "6s", [(6, "a"), (12, "b")]) == []


# run_suite.py's contract as the study reads it: a record per task in
# <output_root>/results.jsonl; --fail / --no_record after -- act out failures
FAKE_SUITE = """
import argparse, json, sys
from pathlib import Path
argv, extra = (sys.argv[1:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]) if "--" in sys.argv \\
    else (sys.argv[1:], [])
parser = argparse.ArgumentParser()
for name in ("backbone",):
    parser.add_argument(name)
parser.add_argument("--frozen", action="store_true")
parser.add_argument("--micro", action="store_true")
parser.add_argument("--tasks", nargs="+")
for name in ("--corpora_root", "--output_root", "--label"):
    parser.add_argument(name)
args = parser.parse_args(argv)
root = Path(args.output_root)
root.mkdir(parents=True, exist_ok=True)
with open(root.parent / "calls.txt", "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if "--fail=1" in extra:
    sys.exit("a task failed")
update = int(args.label.split("@")[1])
metrics = {"kws12": ("acc", 50.0 + update), "er": ("acc", 30.0 + update / 2)}
with open(root / "results.jsonl", "a") as f:
    for task in args.tasks:
        if "--no_record=1" not in extra:
            metric, value = metrics[task]
            f.write(json.dumps({"task": task, "metric": metric, "value": value, "split": "test",
                                "backbone": args.backbone, "label": args.label, "frozen": args.frozen,
                                "steps": 10, "chance": 25.0}) + "\\n")
"""


def test_superb_runs_once_per_command_and_reports_fig5(tmp_path, mini_root):
    """The SUPERB analysis with a stand-in for run_suite.py: one run per
    command line (none for the same one, a fresh one when it changes), a
    failure naming the log, and the CSV, figure and report.md section."""
    import matplotlib.image

    study = load_study()
    fake = tmp_path / "fake_run_suite.py"
    fake.write_text(FAKE_SUITE)
    superb = dict(yaml.safe_load((REPO / "benchmarks" / "batch_size_study.yaml").read_text())["superb"],
                  enabled=True, recipe=str(fake), tasks=["kws12", "er"], corpora_root=str(mini_root))
    config = study.load_config(tiny_config(tmp_path, mini_root, superb=superb))
    out = tmp_path / "out"
    calls = out / "superb" / "calls.txt"
    result = study.superb_checkpoint(config, out, "6s", 6, tmp_path / "CKPT+6")
    assert result["superb"]["kws12"] == {"metric": "acc", "value": 56.0, "higher_is_better": True,
                                         "chance": 25.0, "steps": 10}
    assert result["superb"]["er"]["value"] == 33.0
    assert result["argv"][:3] == [str(fake), str(tmp_path / "CKPT+6"), "--frozen"]
    assert "--output_root" in result["argv"] and str(out / "superb" / "6s_6") in result["argv"]
    # the same command: the cache answers, nothing runs
    assert study.superb_checkpoint(config, out, "6s", 6, tmp_path / "CKPT+6") == result
    assert len(calls.read_text().splitlines()) == 1
    # another command (a recipe override): run again, in a fresh folder
    (out / "superb" / "6s_6" / "stale.txt").write_text("from the old settings")
    changed = dict(config, superb=dict(superb, overrides={"lr": 0.0001}))
    again = study.superb_checkpoint(changed, out, "6s", 6, tmp_path / "CKPT+6")
    assert again["argv"][-2:] == ["--", "--lr=0.0001"] and again["superb"] == result["superb"]
    assert len(calls.read_text().splitlines()) == 2 and not (out / "superb" / "6s_6" / "stale.txt").exists()
    assert len((out / "superb" / "6s_6" / "results.jsonl").read_text().splitlines()) == 2  # one run's records
    # a failed run, and one that exits 0 without the task's record, name the log
    failing = dict(config, superb=dict(superb, overrides={"fail": 1}))
    log = out / "logs" / "superb_12s_3.log"
    with pytest.raises(study.StudyError, match=rf"superb of 12s @ 3 failed \(exit 1\); see {log}"):
        study.superb_checkpoint(failing, out, "12s", 3, tmp_path / "CKPT+3")
    assert "a task failed" in log.read_text()
    silent = dict(config, superb=dict(superb, overrides={"no_record": 1}))
    with pytest.raises(study.StudyError, match=r"results.jsonl: no frozen acc record of kws12 on split 'test' "
                                               rf"labelled '12s@3' .*; see {log}"):
        study.superb_checkpoint(silent, out, "12s", 3, tmp_path / "CKPT+3")
    assert not (out / "analysis" / "12s_3_superb.json").exists()
    # the report: rows as collect() writes them (two checkpoints per batch size, equal hours pairwise)
    rows = []
    for run, seconds, updates in (("6s", 6.0, (6, 12)), ("12s", 12.0, (3, 6))):
        for update in updates:
            hours = update * seconds / 3600
            rows.append({"run": run, "updates": update, "seconds_per_update": seconds,
                         "upper_bound_hours": hours, "measured_hours": 0.8 * hours, "gradient_std": 1.0,
                         "kws12_acc": 40.0 + 1000 * hours, "kws12_chance": 25.0, "er_acc": 30.0,
                         "er_chance": 25.0})
    rows.append({"run": "6s", "updates": 0, "seconds_per_update": 6.0, "upper_bound_hours": 0.0,
                 "measured_hours": 0.0, "gradient_std": 2.0})  # the initial weights: no downstream score
    report = tmp_path / "report"
    report.mkdir()
    written = study.write_superb(config, rows, report)
    assert [(r["run"], r["updates"]) for r in written] == [("6s", 6), ("6s", 12), ("12s", 3), ("12s", 6)]
    with open(report / "superb_vs_updates.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:9] == ["run", "updates", "seconds_per_update", "upper_bound_hours", "measured_hours",
                                  "kws12_acc", "er_acc", "kws12_chance", "er_chance"]
    assert [float(r["kws12_acc"]) for r in table] == pytest.approx([50.0, 60.0, 50.0, 60.0])
    # one column of panels per task, against updates (top) and hours seen (bottom): 2 x 4.6 in by 7 in at 110 dpi
    assert matplotlib.image.imread(report / "superb_vs_updates.png").shape[:2] == (770, 1012)
    assert study.superb_axis_label("kws12") == "Acc (%), higher is better"
    assert study.superb_axis_label("asr") == "WER (%), lower is better"
    section = "\n".join(study.superb_section(config, ["6s", "12s"], written))
    assert "| batch size | updates | hours seen (upper bound) | KWS (12) Acc (%) ↑ | ER Acc (%) ↑ |" in section
    assert "| 6s | 12 | 0.02 | 60 | 30 |" in section
    # KWS: +10 points along each run, the batch sizes equal at equal hours; ER flat
    assert "- KWS (12): largest spread between batch sizes at equal hours: 0 points; improvement from first " \
           "to last kept checkpoint: +10.00 (6s), +10.00 (12s); majority class 25.00 %. Agrees with paper 001" \
           in section
    assert "- ER: largest spread between batch sizes at equal hours: 0 points; improvement from first to last " \
           "kept checkpoint: +0.00 (6s), +0.00 (12s); majority class 25.00 %. Inconclusive" in section
    # scores at or under the majority class say nothing, whatever their trend
    low = [dict(r, kws12_chance=70.0) for r in written]
    assert "No checkpoint beats the majority class" in "\n".join(study.superb_section(config, ["6s", "12s"], low))
    # switched off, nothing is written
    assert study.write_superb(dict(config, superb=dict(superb, enabled=False)), rows, tmp_path) == []
