"""benchmarks/ssl_study.py at micro scale (benchmarks/ssl_study_micro.yaml):
every stage end to end on a tiny corpus in a temporary folder, a second
invocation that skips everything finished, a resumed run, and the settings
errors that must stop the study before anything runs."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "ssl_study.py"
MICRO = REPO_ROOT / "benchmarks" / "ssl_study_micro.yaml"
RUNS = ("w2v2", "nc", "seq", "sewd_w2v2")


def load_study():
    spec = importlib.util.spec_from_file_location("ssl_study_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_study(args, timeout=900):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The micro study run once (every stage) in a temporary folder."""
    root = tmp_path_factory.mktemp("ssl_study")
    where = root / "where.yaml"
    where.write_text(f"corpus:\n  folder: {root}/corpus_s{{seed}}_h{{hours}}\n")
    args = ["--config", str(MICRO), "--overrides_file", str(where), "--out", str(root / "out")]
    proc = run_study(args)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return {"root": root, "out": root / "out", "args": args, "stdout": proc.stdout}


def evaluation_files(out):
    return sorted((out / "evaluate").rglob("*.json"))


def test_every_stage_writes_its_results(study):
    out, stdout = study["out"], study["stdout"]
    for stage in ("data", "pretrain", "evaluate", "report"):
        assert f"[study] stage {stage}: " in stdout
    report = out / "report"
    for name in ("study.md", "study.json", "pretraining_curves.png", "phone_probe_vs_hours.png"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
        assert str(report / name) in stdout  # where the files are is printed
    for figure in ("pretraining_curves.png", "phone_probe_vs_hours.png"):
        assert (report / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (report / "study.md").read_text()
    for name in RUNS:
        assert f"| {name} | finished |" in table
    summary = json.loads((report / "study.json").read_text())
    runs = {r["run"]: r for r in summary["runs"]}
    assert list(runs) == list(RUNS)
    for name in ("w2v2", "sewd_w2v2"):  # contrastive: accuracy vs 1 / (K + 1), perplexity of G x V
        c = runs[name]["contrastive"]
        assert c["num_negatives"] == 100 and c["chance"] == pytest.approx(1 / 101)
        assert c["codebook_size"] == 640 and 0 < c["prob_perplexity_fraction"] <= 1
        assert 0 <= c["valid_accuracy"] <= 1
    for name in ("nc", "seq"):  # non-contrastive: L_U / L_M and the projections' spread
        n = runs[name]["noncontrastive"]
        assert n["valid_L_U"] > 0 and n["valid_L_M"] > 0
        assert n["projection_std"]["target"]["mean_std"] > 0
        assert len(json.loads((out / "evaluate" / name / "projection_update4.json").read_text())
                   ["result"]["target"]["std"]) == 29
    assert runs["seq"]["init_from"] == "w2v2" and runs["seq"]["hours_offset"] > 0
    for name, r in runs.items():
        assert r["status"] == "finished" and r["updates"] == 4
        # the kept checkpoint (half way) and the final one, probed
        assert [c["update"] for c in r["phone_probe_curve"]] == [2, 4]
        phone = r["phone_probe"]["probes"]["linear"]
        assert len(phone["random"]["seeds"]) == 3 and phone["fbank"] > 0
        assert phone["margin_over_random"] == pytest.approx(
            100 * (phone["pretrained"] - phone["random"]["best"]))
        assert r["speaker_probe"]["random"]["seeds"] == [0, 1, 2]
        ft = r["finetune"]
        assert ft["checkpoint"]["budget"] == 4 and ft["random_init"]["budget"] == 4
        assert ft["relative_cer_reduction"] == pytest.approx(
            (ft["random_init"]["CER"] - ft["checkpoint"]["CER"]) / ft["random_init"]["CER"])
    # random networks once per architecture: w2v2, nc and seq share the micro shape
    assert runs["w2v2"]["architecture"] == runs["nc"]["architecture"] == runs["seq"]["architecture"]
    assert runs["sewd_w2v2"]["architecture"] != runs["w2v2"]["architecture"]
    randoms = sorted(p.parent.name for p in (out / "evaluate" / "random").glob("*/finetune.json"))
    assert randoms == sorted({runs["w2v2"]["architecture"], runs["sewd_w2v2"]["architecture"]})
    stages = [json.loads(line)["stage"] for line in (out / "timings.jsonl").read_text().splitlines()]
    assert {"data", "pretrain", "evaluate", "report", "pretrain_run", "evaluate_finetune"} <= set(stages)


def test_second_invocation_skips_finished_work(study):
    out = study["out"]
    logs = {name: (out / "pretrain" / name / "train_log.txt").read_text() for name in RUNS}
    files = {p: p.stat().st_mtime_ns for p in evaluation_files(out)}
    proc = run_study(study["args"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in RUNS:
        assert f"pretrain {name}: finished (update 4" in proc.stdout
        assert (out / "pretrain" / name / "train_log.txt").read_text() == logs[name]
    assert {p: p.stat().st_mtime_ns for p in evaluation_files(out)} == files
    assert "evaluate finetune" not in proc.stdout and "phone:" not in proc.stdout
    assert "up to date, skipped" in proc.stdout


def test_an_interrupted_run_resumes_and_only_its_results_are_redone(study):
    """nc loses its final checkpoint (as if killed after update 2): the
    study resumes it from update 2, then re-evaluates nc's final checkpoint
    only; every other result stays as it was."""
    import shutil

    ssl_study = load_study()
    out = study["out"]
    save = out / "pretrain" / "nc" / "save"
    folders = ssl_study.checkpoints.complete_checkpoints(save)
    finals = [f for f in folders if ssl_study.checkpoints.read_meta(f)["update"] == 4]
    for folder in finals:
        shutil.rmtree(folder)
    (out / "evaluate" / "nc" / "speaker_update2.json").unlink()  # killed mid-evaluation
    before = {p: p.stat().st_mtime_ns for p in evaluation_files(out)}
    log_lines = (out / "pretrain" / "nc" / "train_log.txt").read_text().splitlines()
    proc = run_study(study["args"] + ["--only", "nc", "--stage", "pretrain"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pretrain nc: resuming" in proc.stdout
    new_lines = (out / "pretrain" / "nc" / "train_log.txt").read_text().splitlines()[len(log_lines):]
    assert new_lines and new_lines[0].startswith("step: 3 ")
    assert "resumed from checkpoint at update 2" in (out / "logs" / "pretrain_nc.log").read_text()

    proc = run_study(study["args"] + ["--only", "nc", "--stage", "evaluate"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in evaluation_files(out)}
    changed = sorted(str(p.relative_to(out / "evaluate")) for p in after if after[p] != before.get(p))
    assert changed == ["nc/finetune.json", "nc/phone_update4.json", "nc/projection_update4.json",
                       "nc/speaker_update2.json", "nc/speaker_update4.json"]


def test_settings_errors_name_the_problem(study, tmp_path, capsys):
    ssl_study = load_study()
    base = study["args"]

    def fails(extra_yaml, *args):
        files = []
        if extra_yaml:
            path = tmp_path / f"extra{len(list(tmp_path.iterdir()))}.yaml"
            path.write_text(extra_yaml)
            files = ["--overrides_file", str(path)]
        code = ssl_study.main(base + files + list(args))
        captured = capsys.readouterr()
        assert code == 2, captured.out + captured.err
        return captured.err

    err = fails(None, "--only", "w2v2", "bogus", "--stage", "pretrain")
    assert "--only: unknown run(s) bogus" in err and "w2v2, nc, seq, sewd_w2v2" in err
    err = fails("pretrain:\n  runs:\n    seq:\n      init_from: w2v3\n")
    assert "pretrain.runs.seq.init_from: 'w2v3' names no run" in err
    err = fails("pretrain:\n  runs:\n    w2v2:\n      init_from: seq\n")
    assert "init_from forms a cycle: w2v2 -> seq -> w2v2" in err
    err = fails("pretrain:\n  runs:\n    nc:\n      hparams: hparams/nope_5s.yaml\n", "--only", "nc")
    assert "pretrain.runs.nc: hparams file 'hparams/nope_5s.yaml' not found" in err
    err = fails("pretrain:\n  defaults:\n    overrides_files: [overrides/micro.yaml, "
                "overrides/missing.yaml]\n", "--stage", "pretrain")
    assert "pretrain.runs.w2v2: override file 'overrides/missing.yaml' not found" in err
    err = fails("evaluate:\n  finetune:\n    hparams: hparams/nope.yaml\n", "--stage", "evaluate")
    assert "evaluate.finetune: hparams file 'hparams/nope.yaml' not found" in err
    err = fails("pretrain:\n  runs:\n    w2v2:\n      overrides: {max_updates: abc}\n",
                "--stage", "pretrain", "--only", "w2v2")
    assert "pretrain.runs.w2v2" in err and "max_updates='abc'" in err
    err = fails("pretrain:\n  runs:\n    nc:\n      hparam: hparams/nc_5s.yaml\n")
    assert "pretrain.runs.nc: unknown setting(s) ['hparam']" in err
    # a run started from a run that has not finished: stops, naming both
    (tmp_path / "empty").mkdir()
    err = fails(None, "--out", str(tmp_path / "empty"), "--stage", "pretrain", "--only", "seq")
    assert "seq starts from run w2v2's final checkpoint, which does not exist yet" in err


def test_default_config_is_complete():
    """The shipped settings parse and order seq after w2v2."""
    ssl_study = load_study()
    config = ssl_study.load_config(ssl_study.DEFAULT_CONFIG)
    study = ssl_study.Study(config, seed=3)
    assert study.order.index("seq") > study.order.index("w2v2")
    assert study.data_folder.name == "study_s3_h4"
    assert ssl_study.run_settings(config, "seq")["init_from"] == "w2v2"
    micro = ssl_study.load_config(MICRO)
    assert micro["pretrain"]["runs"].keys() == config["pretrain"]["runs"].keys()
    assert ssl_study.run_settings(micro, "nc")["overrides_files"] == ["overrides/micro.yaml"]
    # every hparams / override file the default study names exists, for every stage
    ssl_study.check_files(study, study.order, ssl_study.STAGES)
