"""The pre-training recipe end to end at micro scale: every objective runs,
checkpoints load as backbones, 2-process torchrun, kill-and-resume, and the
clear errors for bad configurations."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import load_recipe_script
from speechbrain_ext import load_backbone
from speechbrain_ext.io.checkpoints import CheckpointError

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "pretrain"
HPARAMS = RECIPE / "hparams"
# A model small enough for tests; the demo uses overrides/micro.yaml as is.
TEST_MODEL = ("--backbone_config={conv_layers: [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], "
              "[32, 3, 2], [32, 2, 2], [32, 2, 2]], dim: 32, num_layers: 2, num_heads: 2, "
              "ffn_dim: 64, pos_conv_kernel: 16, pos_conv_groups: 4, layerdrop: 0.0}")


def recipe_args(yaml, out, *extra, updates=4):
    return [str(HPARAMS / yaml), "--overrides_file", "overrides/micro.yaml", TEST_MODEL,
            f"--output_folder={out}", f"--max_updates={updates}", "--device=cpu",
            "--log_interval=1", "--data_folder=" + str(DATA / "LibriSpeech"), *extra]


def run_recipe(args, cwd=REPO, launcher=None, timeout=600):
    cmd = (launcher or [sys.executable]) + [str(RECIPE / "train.py")] + args
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


DATA = None


@pytest.fixture(scope="module", autouse=True)
def librispeech(mini_root):
    global DATA
    from data_prep.synthetic import generate

    generate(mini_root, size="mini", corpora=["librispeech"], log=lambda *a: None)
    DATA = mini_root


def log_updates(train_log):
    return [int(m) for m in re.findall(r"train update: (\d+)", Path(train_log).read_text())]


@pytest.fixture(scope="module")
def w2v2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("w2v2")
    text = run_recipe(recipe_args("w2v2_1s.yaml", out))
    return out, text


def test_length_variants_are_not_copies():
    """The per-length YAMLs of one method name the 5 s one and change only
    the split length; loaded, they equal it but for that key (and the paths
    built from it)."""
    import yaml
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_ext.training.recipe_cli import parse_arguments

    for objective in ("w2v2", "nc"):
        for length in (1, 10, 15):
            path = HPARAMS / f"{objective}_{length}s.yaml"
            assert yaml.safe_load(path.read_text()) == {"variant_of": f"{objective}_5s.yaml",
                                                        "split_length": length}, path
            loaded = {}
            for name in (f"{objective}_5s.yaml", path.name):
                hparams_file, _, overrides = parse_arguments(
                    [f"hparams/{name}", "--data_folder=/x", "--output_folder=/o"], RECIPE)
                assert Path(hparams_file).name == f"{objective}_5s.yaml"
                with open(hparams_file) as f:
                    loaded[name] = load_hyperpyyaml(f, overrides)
            base, variant = loaded[f"{objective}_5s.yaml"], loaded[path.name]
            assert variant["split_length"] == length and base["split_length"] == 5
            plain = (int, float, str, bool, list, dict, type(None))
            differ = sorted(k for k, v in base.items()
                            if isinstance(v, plain) and v != variant[k] and k != "split_length")
            assert differ == [], differ  # the output folder was overridden for both


def test_contrastive_micro_run(w2v2_run):
    out, text = w2v2_run
    log = (out / "train_log.txt").read_text()
    for key in ("accuracy", "prob_perplexity", "code_perplexity", "temperature", "lr", "hours_seen",
                "contrastive", "diversity", "feature_penalty"):
        assert f"train {key}:" in log, key
    assert log_updates(out / "train_log.txt")[-1] == 4
    assert "valid accuracy:" in log and "valid prob_perplexity:" in log  # valid terms, not only the loss
    assert "min of audio per update" in text  # the effective batch is stated
    assert "starting from a random initialisation (seed 1986)" in text
    # the measured seconds per update hold the requested 40 s within one 1 s piece
    measured = [float(x) for x in re.findall(r"train seconds_per_update: ([0-9.]+)", log)]
    requested = [float(x) for x in re.findall(r"train requested_seconds_per_update: ([0-9.]+)", log)]
    assert measured and set(requested) == {40.0}
    assert all(40.0 - 2.0 < m <= 40.0 for m in measured), measured
    backbone = load_backbone(out / "save")
    assert backbone.config.dim == 32 and not backbone.training
    with torch.no_grad():
        states = backbone(torch.randn(2, 16000)).hidden_states
    assert len(states) == 3 and all(torch.isfinite(s).all() for s in states)


def test_recipe_runs_from_its_own_folder(tmp_path):
    """`python train.py hparams/nc_5s.yaml` from recipes/pretrain works as from the root."""
    args = recipe_args("nc_5s.yaml", tmp_path / "nc", "--use_tensorboard=True", updates=2)
    args[0] = "hparams/nc_5s.yaml"
    run_recipe(args, cwd=RECIPE)
    assert log_updates(tmp_path / "nc" / "train_log.txt")[-1] == 2
    # the YAML's TensorBoard option writes event files beside the text log
    assert list((tmp_path / "nc" / "tensorboard").rglob("events.out.tfevents.*"))
    log = (tmp_path / "nc" / "train_log.txt").read_text()
    assert "train time_unrolled_loss:" in log and "train time_merged_loss:" in log
    # the dynamic loss is always 2: validation logs the terms, and checkpoints
    # are compared by L_U + L_M
    assert "valid time_unrolled_loss:" in log and "valid unrolled_plus_merged:" in log
    meta = next((tmp_path / "nc" / "save").glob("CKPT+*/CKPT.yaml")).read_text()
    assert "unrolled_plus_merged:" in meta


def test_sequentially_combined_starts_from_the_w2v2_checkpoint(w2v2_run, tmp_path):
    out, _ = w2v2_run
    start = load_backbone(out / "save")
    text = run_recipe(recipe_args("seq_5s.yaml", tmp_path / "seq", f"--init_from={out / 'save'}", updates=2))
    assert f"starting from the weights of {out / 'save'} (init_from)" in text
    # both networks started from the checkpoint; the kept (target) one moved only by EMA
    final = load_backbone(tmp_path / "seq" / "save")
    same_shape = all(a.shape == b.shape for a, b in zip(start.state_dict().values(),
                                                          final.state_dict().values()))
    assert same_shape
    delta = max((a - b).abs().max().item() for a, b in zip(start.state_dict().values(),
                                                             final.state_dict().values()))
    assert 0 < delta < 0.5


def test_wrong_architecture_checkpoint_is_refused(w2v2_run, tmp_path):
    out, _ = w2v2_run
    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train")

    args = recipe_args("seq_5s.yaml", tmp_path / "bad", f"--init_from={out / 'save'}")
    args[3] = args[3].replace("dim: 32", "dim: 48")
    with pytest.raises(CheckpointError, match="dim: checkpoint 32 vs config 48"):
        train.main(args)


def test_bad_configurations_fail_before_training(tmp_path):
    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train")
    from speechbrain_ext.io.data import DataPreparationError

    with pytest.raises(ValueError, match="min_batch_size"):  # B < 2 for the merging loss
        train.main(recipe_args("nc_15s.yaml", tmp_path / "b1", "--batch_seconds=17"))
    with pytest.raises(ValueError, match="shorter than the mask span"):  # 1 s = 49 frames < 60
        train.main(recipe_args("nc_1s.yaml", tmp_path / "span", "--online_mask=[0.1, 60]"))
    with pytest.raises(DataPreparationError, match="was not prepared"):
        train.main(recipe_args("nc_5s.yaml", tmp_path / "np", "--skip_prep=True"))
    with pytest.raises(DataPreparationError, match="does not exist"):
        train.main(recipe_args("nc_5s.yaml", tmp_path / "nf", "--data_folder=/no/such/LibriSpeech"))
    with pytest.raises(ValueError, match="malformed"):
        train.main(recipe_args("nc_5s.yaml", tmp_path / "mf", "--lr=[0.1,"))
    with pytest.raises(ValueError, match="pretrain_on must be 'pieces'"):
        train.main(recipe_args("nc_5s.yaml", tmp_path / "po", "--pretrain_on=frames"))
    with pytest.raises(ValueError, match=r"keep_checkpoints_at must be strictly increasing.*\[5, 3\]"):
        train.main(recipe_args("nc_5s.yaml", tmp_path / "keep", "--keep_checkpoints_at=[5, 3]"))
    assert not (tmp_path / "keep" / "prep_train").exists()  # refused before any preparation


def test_audio_damaged_after_preparation_is_named_before_training(tmp_path):
    """A file cut after the length split was prepared stops the next run
    before its first update, with the file's name."""
    import shutil

    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train")
    from speechbrain_ext.io.data import DataPreparationError

    corpus = tmp_path / "LibriSpeech"
    for split in ("train-clean-100", "dev-clean"):
        shutil.copytree(DATA / "LibriSpeech" / split, corpus / split)
    args = recipe_args("nc_5s.yaml", tmp_path / "run", f"--data_folder={corpus}", updates=1)
    train.main(args)
    victim = sorted((corpus / "train-clean-100").rglob("*.flac"))[3]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    with pytest.raises(DataPreparationError, match=victim.name):
        train.main([a for a in args if not a.startswith("--max_updates")] + ["--max_updates=2"])
    assert log_updates(tmp_path / "run" / "train_log.txt") == [1]  # no update after the damage


def test_validation_between_epochs_keeps_the_checkpoints_asked_for(tmp_path):
    """Paper 001's "validate every 5k updates, keep every checkpoint": here
    every 2 updates, keeping those of updates 3 and 5 besides the best one;
    each records the hours of audio seen and the CPU hours."""
    import yaml

    out = tmp_path / "every"
    run_recipe(recipe_args("nc_5s.yaml", out, "--valid_interval_updates=2", "--keep_checkpoints_at=[3, 5]",
                           "--checkpoints_to_keep=1", updates=7))
    log = (out / "train_log.txt").read_text()
    validated = [int(u) for u in re.findall(r"^epoch: \d+, update: (\d+)", log, re.M)]
    assert validated == [2, 3, 4, 5, 6, 7], validated
    # the dynamic Barlow loss is 2 on every batch, so every validation's mean
    # loss is 2, mid-epoch ones too (SpeechBrain's running average must not
    # count the epoch's training batches)
    assert [float(v) for v in re.findall(r"valid loss: ([0-9.e+-]+)", log)] == [2.0] * 6, log
    metas = {m["update"]: m for m in (yaml.safe_load((c / "CKPT.yaml").read_text())
                                      for c in (out / "save").glob("CKPT+*"))}
    assert {3, 5} <= set(metas) and 7 in metas and len(metas) <= 4, sorted(metas)
    assert metas[3]["keep"] and metas[5]["keep"] and not metas[3]["end-of-epoch"]
    assert 0 < metas[3]["hours_seen"] < metas[5]["hours_seen"] < metas[7]["hours_seen"]
    assert 0 < metas[3]["cpu_hours"] < metas[7]["cpu_hours"]
    assert "cpu_hours_per_1k_updates" in metas[7]
    # a kept checkpoint loads as a backbone
    kept = next(c for c in (out / "save").glob("CKPT+*") if "update: 3" in (c / "CKPT.yaml").read_text())
    assert load_backbone(kept).config.dim == 32
    # the backbone file records the run's audio and device hours, which the
    # downstream results records carry as pretrain_hours / pretrain_cpu_hours
    from speechbrain_ext.downstream.results import pretraining_device_hours, pretraining_hours
    from speechbrain_ext.interop.loading import backbone_metadata

    metadata = backbone_metadata(kept)
    assert metadata["updates"] == 3 and metadata["hours_seen"] == pytest.approx(metas[3]["hours_seen"])
    assert pretraining_device_hours(kept) == {"cpu_hours": pytest.approx(metas[3]["cpu_hours"], rel=0.05)}
    assert pretraining_hours(out / "save") == pytest.approx(metas[7]["hours_seen"])


def test_a_kept_checkpoint_does_not_keep_the_next_one(tmp_path):
    """A checkpoint kept for good (update 3 of keep_every_updates=3) leaves
    the next save, here the run's last one at update 5, a normal one."""
    import yaml

    out = tmp_path / "every3"
    run_recipe(recipe_args("nc_5s.yaml", out, "--keep_every_updates=3", updates=5))
    metas = {m["update"]: m for m in (yaml.safe_load((c / "CKPT.yaml").read_text())
                                      for c in (out / "save").glob("CKPT+*"))}
    assert metas[3]["keep"] and not metas[5]["keep"], {u: m["keep"] for u, m in metas.items()}


def test_whole_utterance_pretraining(tmp_path):
    """Papers 001 / 002: whole utterances, each cropped to max_sample_size and
    every batch to its shortest clip; the budget counts the cropped seconds."""
    out = tmp_path / "utt"
    text = run_recipe(recipe_args("w2v2_5s.yaml", out, "--pretrain_on=utterances",
                                  "--max_sample_size=48000", "--min_sample_size=32000", updates=3))
    assert "pre-training done: 3 updates" in text
    assert (out / "prep_train" / "utterances.csv").is_file()
    log = (out / "train_log.txt").read_text()
    batched = [float(x) for x in re.findall(r"train seconds_per_update: ([0-9.]+)", log)]
    trained = [float(x) for x in re.findall(r"train trained_seconds_per_update: ([0-9.]+)", log)]
    # 40 s of utterances cropped to <= 3 s: within one 3 s crop of the budget
    assert all(37.0 < b <= 40.0 for b in batched), batched
    assert all(t <= b + 1e-6 for t, b in zip(trained, batched)), (trained, batched)


def test_two_process_torchrun(tmp_path):
    """DDP as users run it: torchrun, gloo on CPU; both processes' audio is counted."""
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--master_port=29617"]
    text = run_recipe(recipe_args("nc_5s.yaml", out, "--distributed_backend=gloo", updates=3),
                      launcher=torchrun)
    assert "x 2 processes" in text
    log = (out / "train_log.txt").read_text()
    assert log_updates(out / "train_log.txt")[-1] == 3
    hours = [float(h) for h in re.findall(r"train hours_seen: ([0-9.e+-]+)", log)]
    # each update consumes a batch on each of the 2 processes: at least 2 pieces of 5 s each
    assert hours[-1] * 3600 >= 3 * 2 * 2 * 5 - 1e-6
    # each process draws its own masks (they once shared one random stream)
    equal = re.findall(r"train processes_with_equal_masks: ([0-9.]+)", log)
    assert len(equal) == 3 and all(float(e) == 0 for e in equal), equal
    # both processes' batches count: ~2 x 40 s per update
    measured = [float(x) for x in re.findall(r"train seconds_per_update: ([0-9.]+)", log)]
    assert all(80.0 - 2 * 5.1 < m <= 80.0 for m in measured), measured
    assert load_backbone(out / "save").config.dim == 32


def test_killed_run_resumes_bit_exact(tmp_path):
    """kill -9 at a random update, resume: the run continues from its last
    checkpoint's update and ends with exactly the weights, EMA target and
    optimizer state of a run that was never interrupted."""
    import random

    from conftest import load_recipe_script

    trial = load_recipe_script(REPO / "benchmarks" / "resume_trial.py", "resume_trial")
    data = DATA / "LibriSpeech"
    updates = 16
    reference_out, out = tmp_path / "reference", tmp_path / "resume"
    trial.run_to_end(trial.recipe_command("nc_1s.yaml", reference_out, data, updates))
    kill_at = random.randint(3, updates - 4)
    cmd = trial.recipe_command("nc_1s.yaml", out, data, updates)
    killed_at, finished = trial.run_and_kill(cmd, out, kill_at)
    assert not finished and killed_at < updates, (kill_at, killed_at)
    text = trial.run_to_end(cmd)
    resumed = re.search(r"resumed from checkpoint at update (\d+), ([0-9.]+) h", text)
    assert resumed, text[-2000:]
    step = int(resumed.group(1))
    assert 2 <= step <= killed_at and float(resumed.group(2)) > 0, (step, killed_at)
    logged = log_updates(out / "train_log.txt")
    restart = logged.index(step + 1, logged.index(killed_at) + 1)
    assert logged[restart:] == list(range(step + 1, updates + 1)), (step, killed_at, logged)
    reference, _ = trial.final_state(reference_out)
    state, _ = trial.final_state(out)
    exact, worst, relative = trial.compare(reference, state)
    assert exact, f"killed at update {killed_at}: max |diff| {worst}, relative L2 {relative}"


def test_nonfinite_batches_are_skipped_and_named(tmp_path, monkeypatch):
    """A batch whose loss is not finite is skipped: its utterances are named,
    it advances neither the update count nor the audio seen; once patience
    is exhausted the error names the utterances."""
    from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel

    train = load_recipe_script(RECIPE / "train.py", "pretrain_recipe_train")
    forward = NonContrastiveModel.forward
    calls = {"n": 0, "accepted_seconds": 0.0}

    def poisoned(self, wav, wav_lens=None):
        out = forward(self, wav, wav_lens)
        if self.training:
            calls["n"] += 1
            if calls["n"] in poison:
                out["loss"] = out["loss"] * float("nan")
            else:
                calls["accepted_seconds"] += wav.shape[0] * wav.shape[1] / 16000
        return out

    monkeypatch.setattr(NonContrastiveModel, "forward", poisoned)
    poison = {2}
    brain = train.main(recipe_args("nc_5s.yaml", tmp_path / "skip", updates=4))
    assert log_updates(tmp_path / "skip" / "train_log.txt") == [1, 2, 3, 4]
    assert brain.optimizer_step == 4 and calls["n"] == 5  # 5 batches drawn, 4 updates
    # the skipped batch's utterances are named (length-split piece ids of the corpus)
    assert len(brain.skipped_ids) >= 2 and all(re.fullmatch(r"\d+-\d+-\d+.*", i) for i in brain.skipped_ids)
    # the audio seen is that of the 4 accepted batches only
    seen = brain.hparams.audio_counter.seconds
    assert abs(seen - calls["accepted_seconds"]) < 1e-6, (seen, calls)

    calls["n"] = 0
    poison = set(range(1, 100))
    with pytest.raises(ValueError, match=r"not finite in 3 batches.*utterances of the skipped "
                                         r"batches: \S+"):
        train.main(recipe_args("nc_5s.yaml", tmp_path / "nan", "--nonfinite_patience=2", updates=4))


def test_interrupted_checkpoint_save_is_ignored(tmp_path):
    """A folder left by a kill during a save (meta written, parameters not)
    is neither recovered nor kept."""
    from speechbrain_ext.training.checkpointing import SafeCheckpointer

    layer = torch.nn.Linear(2, 2)
    ckpt = SafeCheckpointer(tmp_path, recoverables={"layer": layer})
    ckpt.save_checkpoint(meta={"n": 1})
    saved = layer.weight.detach().clone()
    broken = tmp_path / "CKPT+9999-interrupted"
    broken.mkdir()
    (broken / "CKPT.yaml").write_text("end-of-epoch: true\nn: 2\nunixtime: 9999999999\n")
    (broken / "layer.ckpt").write_bytes(b"trunc")  # what a kill mid-write leaves
    with torch.no_grad():
        layer.weight.zero_()
    recovered = SafeCheckpointer(tmp_path, recoverables={"layer": layer}).recover_if_possible()
    assert recovered.meta["n"] == 1 and torch.equal(layer.weight, saved)
    assert not broken.exists()
