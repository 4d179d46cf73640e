"""Seed aggregation (paper 002, Tables 3 and 5: mean and standard deviation
over three fine-tuning runs): downstream results.jsonl records and the
fine-tuning recipe's wer.json files. The standard deviation is the sample
one (ddof=1)."""
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import load_recipe_script
from speechbrain_ext.downstream.brain import DownstreamBrain
from speechbrain_ext.downstream.results import (aggregate_over_seeds, append_result,
                                                finetune_run_records, format_finetune_table,
                                                format_table, main, mean_std, read_results)

REPO = Path(__file__).resolve().parents[1]
VALUES = {1: 96.0, 2: 97.0, 3: 98.5}


def _write(path, seeds=VALUES, **fields):
    fields = {"task": "kws12", "metric": "acc", "split": "test", "backbone": "ckpt", "frozen": True,
              **fields}
    for seed, value in seeds.items():
        append_result(path, value=value, seed=seed, steps=100 + seed, **fields)


def _cell(table, row, column):
    lines = table.splitlines()
    header = [title.strip("| ") for title in lines[0].split(" | ")]
    rows = {line.split(" | ")[0].strip("| "): line.strip(" |").split(" | ") for line in lines[3:]}
    return rows[row][header.index(column)].strip(" |")


def test_three_seeds_give_mean_and_sample_std(tmp_path):
    path = tmp_path / "results.jsonl"
    _write(path)  # the steps differ too: what a run measures, not its setting
    groups = aggregate_over_seeds(read_results(path))
    assert len(groups) == 1
    (group,) = groups
    mean = (96.0 + 97.0 + 98.5) / 3
    std = (sum((v - mean) ** 2 for v in VALUES.values()) / 2) ** 0.5  # ddof=1
    assert group["value"] == pytest.approx(mean) and group["std"] == pytest.approx(std)
    assert group["std"] == pytest.approx(statistics.stdev(VALUES.values()))
    assert group["std"] > statistics.pstdev(VALUES.values())  # not the population std
    assert (group["n"], group["seeds"], group["values"]) == (3, [1, 2, 3], [96.0, 97.0, 98.5])
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    table = format_table(read_results(path), tasks=("kws12",), aggregate_seeds=True)
    assert _cell(table, "ckpt", "KWS (12) Froz.") == f"{mean:.2f} ± {std:.2f} (n=3)" \
        == "97.17 ± 1.26 (n=3)"
    # without aggregation the latest record still wins, as before
    assert _cell(format_table(read_results(path), tasks=("kws12",)), "ckpt", "KWS (12) Froz.") == "98.50"


def test_single_seed_prints_without_plus_minus(tmp_path):
    path = tmp_path / "results.jsonl"
    _write(path, {7: 91.5})
    table = format_table(read_results(path), tasks=("kws12",), aggregate_seeds=True)
    assert _cell(table, "ckpt", "KWS (12) Froz.") == "91.50"
    assert "±" not in table and "n=" not in table
    (group,) = aggregate_over_seeds(read_results(path))
    assert group["n"] == 1 and group["std"] is None


def test_a_rerun_of_one_seed_replaces_it(tmp_path):
    path = tmp_path / "results.jsonl"
    _write(path)
    _write(path, {2: 99.0})  # seed 2 run again
    (group,) = aggregate_over_seeds(read_results(path))
    assert group["n"] == 3 and group["values"] == [96.0, 99.0, 98.5]


def test_records_that_differ_in_other_fields_are_not_merged(tmp_path):
    path = tmp_path / "results.jsonl"
    _write(path)
    _write(path, {1: 80.0, 2: 82.0}, frozen=False)
    _write(path, {1: 50.0, 2: 52.0, 3: 54.0}, backbone="other")
    _write(path, {1: 60.0}, split="dev")
    _write(path, {1: 70.0, 2: 71.0}, pretrain_hours=12.5, label="ckpt 12h")
    _write(path, {1: 10.0, 2: 11.0}, task="asv", metric="eer", trials=40)
    _write(path, {3: 12.0}, task="asv", metric="eer", trials=80)  # another trial list
    _write(path, {4: 40.0}, task="asv", metric="eer", trials=40, folds=[1.0, 2.0])
    append_result(path, task="kws12", metric="acc", value=10.0, split="test", backbone="ckpt",
                  frozen=True)  # no seed recorded: not one of the seeded runs
    records = read_results(path)
    groups = aggregate_over_seeds(records)
    found = {(g["task"], g["split"], g["backbone"], g["label"], g["frozen"], g.get("trials"),
              g["seeds"][0] is not None): (g["n"], round(g["value"], 4)) for g in groups}
    assert len(groups) == len(found) == 8
    assert found == {
        ("kws12", "test", "ckpt", "ckpt", True, None, True): (3, round(291.5 / 3, 4)),
        ("kws12", "test", "ckpt", "ckpt", False, None, True): (2, 81.0),
        ("kws12", "test", "other", "other", True, None, True): (3, 52.0),
        ("kws12", "dev", "ckpt", "ckpt", True, None, True): (1, 60.0),
        ("kws12", "test", "ckpt", "ckpt 12h", True, None, True): (2, 70.5),
        ("asv", "test", "ckpt", "ckpt", True, 40, True): (3, round(61 / 3, 4)),  # folds: an outcome
        ("asv", "test", "ckpt", "ckpt", True, 80, True): (1, 12.0),
        ("kws12", "test", "ckpt", "ckpt", True, None, False): (1, 10.0),
    }
    table = format_table(records, tasks=("kws12", "asv"), aggregate_seeds=True)
    # the unseeded record came last: its cell is the latest group's
    assert _cell(table, "ckpt", "KWS (12) Froz.") == "10.00"
    assert _cell(table, "ckpt", "KWS (12) Unfroz.") == "81.00 ± 1.41 (n=2)"
    assert _cell(table, "other", "KWS (12) Froz.") == "52.00 ± 2.00 (n=3)"
    assert _cell(table, "ckpt 12h", "KWS (12) Froz.") == "70.50 ± 0.71 (n=2)"
    assert _cell(table, "ckpt", "ASV Froz.") == "20.33 ± 17.04 (n=3)"  # trials 40, latest group


def test_cli_prints_the_aggregated_table(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    _write(path)
    assert main([str(path), "--tasks", "kws12", "--seeds"]) == 0
    assert "97.17 ± 1.26 (n=3)" in capsys.readouterr().out
    main([str(path), "--tasks", "kws12"])
    out = capsys.readouterr().out
    assert "98.50" in out and "±" not in out


def test_downstream_brain_records_its_seed(tmp_path):
    fake = SimpleNamespace(
        hparams=SimpleNamespace(results_file=tmp_path / "r.jsonl", task="er", seed=3, label=None),
        upstream=SimpleNamespace(source="ckpt", random_init=True, freeze=True), optimizer_step=5)
    record = DownstreamBrain.write_result(fake, "acc", 61.0, "test", folds=[60.0, 62.0])
    assert record["seed"] == 3 and record["steps"] == 5
    assert read_results(tmp_path / "r.jsonl")[0]["seed"] == 3


def test_run_suite_runs_each_seed_in_its_own_folder(tmp_path):
    suite = load_recipe_script(REPO / "recipes" / "downstream" / "run_suite.py", "run_suite_seeds")
    args, passthrough = suite.parse(["ckpt", "--frozen", "--tasks", "er", "--seeds", "1", "2",
                                     "--output_root", str(tmp_path / "root")])
    assert args.seeds == [1, 2]
    cmd = suite.command(args, "er", True, passthrough, seed=2)
    assert cmd[cmd.index("--seed") + 1] == "2"
    assert cmd[cmd.index("--output_root") + 1] == str(tmp_path / "root" / "seed2")
    assert cmd.count("--output_root") == 1
    assert cmd[cmd.index("--results_file") + 1] == str(tmp_path / "root" / "results.jsonl")
    assert (tmp_path / "root" / "seed2" / "prep").resolve() == (tmp_path / "root" / "prep").resolve()
    plain = suite.command(args, "er", True, passthrough)
    assert "--seed" not in plain and plain[plain.index("--output_root") + 1] == str(tmp_path / "root")
    with pytest.raises(SystemExit):
        suite.parse(["ckpt", "--frozen", "--seeds", "1", "1"])
    with pytest.raises(SystemExit):
        suite.parse(["ckpt", "--frozen", "--seeds", "1", "2", "--", "--seed", "3"])


def _finetune_run(folder, seed, wers, lr=5e-5, setting="ls100"):
    folder.mkdir(parents=True)
    (folder / "hyperparams.yaml").write_text(
        f"setting: {setting}\nseed: {seed}\n__set_seed: !apply:torch.manual_seed [{seed}]\n"
        f"output_folder: {folder}\nlr: {lr}\ntrain_logger: !new:Logger\n"
        f"    save_file:\n        {folder}/train_log.txt\n")
    wer = {split: {"greedy": {"WER": w, "CER": w / 2}, "beam_no_lm": {"WER": w - 1, "CER": w / 2},
                   "lm": {"WER": w - 3, "CER": w / 3}}
           for split, w in (("dev-other", wers[0]), ("test-other", wers[1]))}
    wer.update(tuned={"lm_weight": 1.0, "word_score": 0.0, "split": "dev-other"},
               updates=100 + seed, pretrained="ckpt", setting=setting, seed=seed)
    (folder / "wer.json").write_text(json.dumps(wer))
    return folder


def test_finetune_runs_aggregate_over_seeds(tmp_path, capsys):
    runs = [_finetune_run(tmp_path / f"s{seed}", seed, wers)
            for seed, wers in ((1, (20.0, 22.0)), (2, (21.0, 23.0)), (3, (22.0, 27.0)))]
    other_lr = _finetune_run(tmp_path / "lr", 1, (30.0, 31.0), lr=1e-4)  # another setting
    records = [r for run in runs + [other_lr] for r in finetune_run_records(run)]
    table = format_finetune_table(records).splitlines()
    assert len(table) == 4  # header, rule, two settings
    header = table[0].split(" | ")
    assert header[3:] == ["dev-other greedy WER", "dev-other beam, no LM WER", "dev-other LM WER",
                          "test-other greedy WER", "test-other beam, no LM WER",
                          "test-other LM WER |"]
    three, one = (line.split(" | ") for line in table[2:])
    assert three[3] == "21.00 ± 1.00 (n=3)" and three[4] == "20.00 ± 1.00 (n=3)"
    assert three[6].strip(" |") == f"24.00 ± {statistics.stdev([22.0, 23.0, 27.0]):.2f} (n=3)"
    assert one[3] == "30.00" and "±" not in " ".join(one)
    aggregate = load_recipe_script(REPO / "recipes" / "finetune" / "aggregate.py", "finetune_aggregate")
    groups = aggregate.main([str(r) for r in runs] + [str(runs[0] / "wer.json"), "--metric", "CER",
                                                      "--json", str(tmp_path / "agg.json")])
    assert "10.50 ± 0.50 (n=3)" in capsys.readouterr().out  # run 1 given twice counts once
    assert json.loads((tmp_path / "agg.json").read_text()) == groups
    assert {g["n"] for g in groups} == {3}
    with pytest.raises(FileNotFoundError, match="wer.json"):
        finetune_run_records(tmp_path / "missing")


def test_cli_names_a_missing_results_file(tmp_path, capsys):
    assert main([str(tmp_path / "none.jsonl")]) == 2
    assert "no results file" in capsys.readouterr().err
