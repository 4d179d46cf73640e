"""benchmarks/contrastive_collapse.py runs and prints its columns (2 updates)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "contrastive_collapse.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_collapse_benchmark_prints_loss_and_cosines(mini_corpus):
    data = mini_corpus[0] / "LibriSpeech"
    out = run_benchmark("--data_folder", str(data), "--updates", "2", "--every", "1", "--batches", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2]
    for row in rows:
        values = [float(v.strip("()")) for v in row[1:]]
        loss, accuracy, held_loss, held_accuracy, ppl, ctx, tgt, spread, lag1, lag2, agree, chance = values
        assert 3.0 < held_loss < 6.0 and 0 <= held_accuracy <= 1
        assert -1 <= ctx <= 1 and -1 <= tgt <= 1 and spread >= 0
        assert -1 <= lag2 <= 1 and -1 <= lag1 <= 1 and 0 < chance <= 1 and 0 <= agree <= 1
    assert "ln(101) = 4.615" in out.stdout


def test_collapse_benchmark_refuses_a_non_contrastive_yaml(tmp_path):
    out = run_benchmark("--data_folder", str(tmp_path), "--hparams", "hparams/nc_5s.yaml")
    assert out.returncode != 0 and "not a contrastive" in out.stderr


def test_ablation_options_reach_the_model(mini_corpus):
    """--feature_penalty_weight, --frozen_parts and the crop options: with the
    CNN and its LayerNorm frozen, the quantizer's input frames (lag columns)
    do not change while the rest trains."""
    data = mini_corpus[0] / "LibriSpeech"
    out = run_benchmark("--data_folder", str(data), "--updates", "2", "--every", "1", "--batches", "1",
                        "--feature_penalty_weight", "0", "--freeze_targets", "-1",
                        "--frozen_parts", "cnn,layer_norm", "--crop_seconds", "2", "--batch_size", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 batches of 2 x 2 s" in out.stdout and "feature penalty weight 0.0" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3
    assert len({(r[9], r[10]) for r in rows}) == 1  # lag 1 / lag 2 of frozen features
    assert len({r[1] for r in rows}) > 1  # the training loss moves


def test_frozen_parts_names_are_checked(mini_corpus):
    out = run_benchmark("--data_folder", str(mini_corpus[0] / "LibriSpeech"), "--freeze_targets", "-1",
                        "--frozen_parts", "cnn,decoder")
    assert out.returncode != 0 and "unknown ['decoder']" in out.stderr


def test_small_override_drops_the_penalty_and_sets_the_layer_norm_cnn(tmp_path):
    """overrides/small.yaml on top of micro.yaml reaches the contrastive model;
    the paper-scale YAML keeps fairseq's penalty weight."""
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_ext.training.recipe_cli import parse_arguments

    def model(*files):
        argv = ["hparams/w2v2_5s.yaml", *sum((["--overrides_file", f] for f in files), []),
                "--data_folder=unused", f"--output_folder={tmp_path}"]
        hparams_file, _, overrides = parse_arguments(argv, ROOT / "recipes" / "pretrain",
                                                     skip_unknown_file_keys=True)
        with open(hparams_file) as f:
            return load_hyperpyyaml(f, overrides)["model"]

    micro = model("overrides/micro.yaml")
    small = model("overrides/micro.yaml", "overrides/small.yaml")
    assert micro.loss_fn.feature_penalty_weight == 10.0 and small.loss_fn.feature_penalty_weight == 0.0
    config = small.wav2vec2.config
    assert (config.extractor_mode, config.conv_bias, config.dim) == ("layer_norm", True, 128)
    assert micro.wav2vec2.config.extractor_mode == "group_norm"
