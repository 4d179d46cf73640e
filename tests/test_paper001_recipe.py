"""Paper 001's batch-size study in the pre-training recipe: the seven
Table 1 YAMLs, the heuristic and the cyclic schedule chosen by keys, the
checks on a batch split, its sampler with padded batches (padding in no
loss), the sum / mean loss reduction, the 5 % hold-out and Table 2's
accounting in every checkpoint."""
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from conftest import load_recipe_script
from speechbrain_ext.training.lr_heuristics import TABLE1

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "pretrain"
HPARAMS = RECIPE / "hparams"
TINY = ("--backbone_config={conv_layers: [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], "
        "[32, 3, 2], [32, 2, 2], [32, 2, 2]], dim: 32, num_layers: 2, num_heads: 2, "
        "ffn_dim: 64, pos_conv_kernel: 16, pos_conv_groups: 4, layerdrop: 0.0}")


def yaml_name(row):
    return HPARAMS / f"paper001_{row.label}.yaml"


def load(path, *overrides):
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_ext.training.recipe_cli import parse_arguments

    hparams_file, _, merged = parse_arguments(
        [str(path), "--data_folder=/x", "--output_folder=/o", TINY, *overrides], RECIPE)
    with open(hparams_file) as f:
        return load_hyperpyyaml(f, merged)


@pytest.mark.parametrize("row", TABLE1, ids=lambda r: r.label)
def test_each_table1_yaml_has_the_papers_settings(row):
    hp = load(yaml_name(row))
    assert hp["seconds_per_update"] == row.seconds and hp["batch_label"] == row.label
    assert (hp["gpus"], hp["grad_accumulation_factor"], hp["max_samples_per_gpu"]) == (
        row.gpus, row.accumulation, row.max_samples_per_gpu)
    assert hp["model"].loss_fn.diversity_weight == pytest.approx(row.diversity_weight)
    assert hp["lr_heuristic"] == row.best
    assert hp["lr"] == pytest.approx(row.learning_rate)  # Table 1's bold rate
    schedule = hp["lr_schedule"]  # 8 cycles of 25k up, 25k down, min = max / 100
    assert type(schedule).__name__ == "CyclicTriangular"
    assert (schedule.step_size, schedule.max_lr) == (25000, hp["lr"])
    assert schedule.base_lr == pytest.approx(hp["lr"] / 100)
    assert hp["max_updates"] == 400000 and hp["valid_interval_updates"] == hp["keep_every_updates"] == 5000
    assert hp["valid_holdout"] == 0.05 and hp["sampler"] == "paper001" and hp["loss_reduction"] == "sum"
    assert hp["mask_prob"] == 0.5 and hp["mask_length"] == 10 and hp["model"].num_negatives == 100


def test_the_paper_scale_model_is_base_without_layerdrop():
    base = yaml.safe_load(re.sub(r"!\S+", "", (HPARAMS / "paper001_150s.yaml").read_text()))
    config = base["backbone_config"]
    assert (config["dim"], config["num_layers"], config["layerdrop"]) == (768, 12, 0.0)
    assert "weight_decay: 0.01" in (HPARAMS / "paper001_150s.yaml").read_text()


def test_heuristic_and_schedule_are_keys():
    """An override picks the heuristic and the schedule: no object needed."""
    hp = load(HPARAMS / "paper001_10min.yaml", "--lr_heuristic=lin", "--lr_schedule_kind=linear")
    assert hp["lr"] == pytest.approx(5e-5)  # Table 1: h_lin at 10 min
    assert type(hp["lr_schedule"]).__name__ == "LinearWarmupDecay"
    with pytest.raises(ValueError, match="unknown learning-rate heuristic 'cosine' .*lr_heuristic"):
        load(HPARAMS / "paper001_10min.yaml", "--lr_heuristic=cosine")
    with pytest.raises(ValueError, match="lr_schedule_kind 'step' is not a schedule"):
        load(HPARAMS / "paper001_10min.yaml", "--lr_schedule_kind=step")


def test_bad_batch_splits_are_refused_before_training(tmp_path):
    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train_p001")
    args = [str(HPARAMS / "paper001_5min.yaml"), "--overrides_file", "overrides/paper001_micro.yaml",
            TINY, f"--output_folder={tmp_path / 'run'}", "--device=cpu"]
    with pytest.raises(ValueError, match=r"seconds_per_update=100.*over the budget.*accumulation 5 would fit"):
        train.main(args + ["--seconds_per_update=100", "--grad_accumulation_factor=1"])
    with pytest.raises(ValueError, match=r"do not divide into 3 equal GPU batches"):
        train.main(args + ["--seconds_per_update=40.0000625", "--grad_accumulation_factor=3"])
    with pytest.raises(ValueError, match=r"gpus=4.*but 1 process\(es\) run; .*--gpus=1 "
                                         r"--grad_accumulation_factor=8"):
        train.main(args + ["--gpus=4", "--seconds_per_update=160"])
    with pytest.raises(ValueError, match="batch_seconds is derived"):
        train.main(args + ["--batch_seconds=20"])
    with pytest.raises(ValueError, match="unknown learning-rate heuristic 'h_cos'"):
        train.main(args + ["--lr_heuristic=h_cos"])
    with pytest.raises(ValueError, match="sampler must be one of duration, paper001"):
        train.main(args + ["--sampler=bucket"])
    assert not (tmp_path / "run" / "prep_train").exists()  # nothing prepared


def test_table1_splits_and_another_split_of_the_same_batch():
    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train_p001")
    for row in TABLE1:
        hp = {"seconds_per_update": row.seconds, "gpus": row.gpus, "batch_seconds": None,
              "grad_accumulation_factor": row.accumulation, "max_samples_per_gpu": row.max_samples_per_gpu}
        split = train.check_batch_split(hp, row.gpus)
        assert hp["batch_seconds"] * row.gpus * row.accumulation == pytest.approx(row.seconds)
        assert split.samples_per_gpu_batch <= row.max_samples_per_gpu
    hp = {"seconds_per_update": 1200.0, "gpus": 4, "grad_accumulation_factor": 2, "batch_seconds": None,
          "max_samples_per_gpu": 2_400_000}  # 20 min on 4 GPUs instead of Table 1's 2 x 4
    assert train.check_batch_split(hp, 4).seconds_per_update == 1200.0 and hp["batch_seconds"] == 150.0


def test_padding_never_enters_a_loss():
    """What the padded samples hold changes no loss term (same seed, same
    shapes: the same masks, negatives, dropout); a CNN whose normalisation
    is per frame (layer_norm) sees the padding only in frames it drops."""
    from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    torch.manual_seed(0)
    config = Wav2Vec2Config.micro()
    config.extractor_mode = "layer_norm"
    model = Wav2Vec2ContrastiveModel(config, num_negatives=5, codevector_dim=32, final_dim=16,
                                     num_vars=8, mask_prob=0.5)
    wav = torch.randn(3, 16000)
    wav_lens = torch.tensor([1.0, 0.55, 0.8])
    pad = torch.arange(16000)[None, :] >= (wav_lens[:, None] * 16000).round()
    outs = []
    for filler in (torch.zeros_like(wav), 1e3 * torch.randn(wav.shape)):
        torch.manual_seed(1)
        outs.append(model(torch.where(pad, filler, wav), wav_lens))
    for key in ("contrastive", "diversity", "feature_penalty", "loss", "accuracy"):
        assert torch.allclose(outs[0][key], outs[1][key], rtol=1e-5, atol=1e-6), key


def test_sum_reduction_is_the_mean_times_the_masked_frames():
    from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    outs = {}
    for reduction in ("mean", "sum"):
        torch.manual_seed(0)
        model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5, codevector_dim=32,
                                         final_dim=16, num_vars=8, loss_reduction=reduction)
        torch.manual_seed(1)
        outs[reduction] = model(torch.randn(2, 16000))
    masked = int(outs["mean"]["time_mask"].sum())
    assert masked == outs["mean"]["num_masked"] > 0
    assert outs["sum"]["loss"].item() == pytest.approx(outs["mean"]["loss"].item() * masked, rel=1e-5)
    assert outs["sum"]["contrastive"].item() == pytest.approx(outs["mean"]["contrastive"].item())
    with pytest.raises(ValueError, match="loss_reduction must be 'mean' or 'sum'"):
        Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), loss_reduction="max")


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory, mini_root):
    from data_prep.synthetic import generate

    generate(mini_root, size="mini", corpora=["librispeech"], log=lambda *a: None)
    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train_p001")
    out = tmp_path_factory.mktemp("p001")
    args = [str(HPARAMS / "paper001_150s.yaml"), "--overrides_file", "overrides/paper001_micro.yaml",
            TINY, f"--output_folder={out}", "--device=cpu", "--log_interval=1",
            f"--data_folder={mini_root / 'LibriSpeech'}", "--lr_cycles=1",
            "--valid_interval_updates=3", "--keep_every_updates=3", "--max_length_difference=6.0"]
    train.main(args + ["--max_updates=3"])
    train.main(args + ["--max_updates=6"])  # resumes at update 3
    return out


def test_micro_run_accounts_for_table2_in_every_checkpoint(micro_run):
    out = micro_run
    metas = {m["update"]: m for m in (yaml.safe_load((c / "CKPT.yaml").read_text())
                                      for c in (out / "save").glob("CKPT+*"))}
    assert {3, 6} <= set(metas)
    for update, meta in metas.items():
        assert meta["upper_bound_hours"] == pytest.approx(update * 40 / 3600)  # 40 s per update
        # padded batches filled up to a budget: measured below the upper bound,
        # and equal to the unpadded audio trained on (nothing cropped)
        assert 0 < meta["measured_hours"] < meta["upper_bound_hours"]
        assert meta["measured_hours"] == pytest.approx(meta["hours_seen"])
        assert meta["upper_bound_epochs"] == pytest.approx(meta["upper_bound_hours"] / meta["dataset_hours"])
        assert meta["max_repeats"] >= 1
    assert metas[6]["measured_hours"] > metas[3]["measured_hours"]  # counts survived the resume
    # the counts stored with the last checkpoint add up to its measured hours
    import csv

    last = max((c for c in (out / "save").glob("CKPT+*")), key=lambda c: yaml.safe_load(
        (c / "CKPT.yaml").read_text())["update"])
    state = torch.load(last / "seen_utterances.ckpt", weights_only=True)
    prep = out / "prep_train"
    with open(prep / "utterances_train_holdout0.05_seed0.csv") as f:
        durations = {r["ID"]: float(r["duration"]) for r in csv.DictReader(f)}
    seen = sum(durations[i] * c for i, c in zip(state["ids"], state["counts"].tolist()))
    assert seen / 3600 == pytest.approx(metas[6]["measured_hours"], rel=1e-6)
    assert max(state["counts"].tolist()) == metas[6]["max_repeats"]


def test_micro_run_holds_out_five_percent_and_batches_like_the_paper(micro_run):
    import csv

    out = micro_run
    prep = out / "prep_train"
    ids = {}
    for stage in ("train", "valid"):
        with open(prep / f"utterances_{stage}_holdout0.05_seed0.csv") as f:
            ids[stage] = {r["ID"] for r in csv.DictReader(f)}
    total = len(ids["train"]) + len(ids["valid"])
    assert not ids["train"] & ids["valid"] and len(ids["valid"]) == round(0.05 * total)
    log = (out / "train_log.txt").read_text()
    measured = [float(x) for x in re.findall(r"train seconds_per_update: ([0-9.]+)", log)]
    assert measured and all(0 < m <= 40.0 for m in measured)  # two GPU batches of <= 20 s padded
    lrs = [float(x) for x in re.findall(r"train lr: ([0-9.e+-]+)", log)]
    peak = 5e-4  # h_sub at 40 s with the micro reference 5e-4 at 40 s
    assert max(lrs) == pytest.approx(peak, rel=1e-2) and min(lrs) == pytest.approx(peak / 100, rel=1e-2)
    assert math.isfinite(float(re.findall(r"valid loss: ([0-9.e+-]+)", log)[-1]))
