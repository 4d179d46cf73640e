"""The sequence (CTC) downstream recipes end to end at micro scale (asr, pr,
sf, asr_zh; frozen and unfrozen) on the synthetic corpora, and their clear
errors before training: a manifest that was not prepared, a label the
vocabulary has never seen, a checkpoint of another architecture.

Recipes run in this process (``main(argv)`` of each ``train.py``) on tiny
subsets for one epoch: they check the plumbing and the records, not scores
(the metrics have their own tests in ``test_downstream_ctc_metrics.py``)."""
import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from speechbrain_ext import load_backbone
from speechbrain_ext.downstream.vocabulary import VocabularyError
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.io.data import DataPreparationError
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "downstream"
MICRO = RECIPES / "overrides" / "micro.yaml"
BACKBONE = None  # the checkpoint fixture's save folder, set before any test runs
TASKS = {"asr": ("wer", "LibriSpeech"), "pr": ("per", "LibriSpeech"),
         "sf": ("cer", "timers-and-such"), "asr_zh": ("cer", "cv-corpus-zh-CN")}


def load_main(task):
    spec = importlib.util.spec_from_file_location(f"ctc_recipe_{task}", RECIPES / task / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A pre-training save folder of the micro architecture (random weights,
    2 h of audio seen), so that these tests need no `make demo` run."""
    global BACKBONE
    folder = tmp_path_factory.mktemp("pretrain") / "save" / "CKPT+2026-01-01+00-00-00+00"
    config = Wav2Vec2Config.from_dict(yaml.safe_load(MICRO.read_text())["backbone_config"])
    torch.manual_seed(0)
    save_backbone(Wav2Vec2Backbone(config), folder / "backbone.ckpt")
    (folder / "audio_counter.ckpt").write_text("7200.0")
    (folder / "COMPLETE").write_text("")  # what SafeCheckpointer writes last
    BACKBONE = folder.parent
    return BACKBONE


@pytest.fixture(scope="module")
def corpora(mini_root, checkpoint):
    from data_prep.synthetic import generate

    generate(mini_root, size="mini", corpora=["librispeech", "timers_and_such", "common_voice_zh"],
             log=lambda *a: None)
    return mini_root


@pytest.fixture(scope="module")
def output_root(tmp_path_factory):
    return tmp_path_factory.mktemp("ctc_downstream")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CI machine has 2 cores shared by everything
    yield
    torch.set_num_threads(threads)


def run_task(task, corpora, output_root, *extra):
    argv = [f"hparams/{task}.yaml", "--overrides_file", "../overrides/micro.yaml",
            "--overrides_file", "../overrides/micro_ctc.yaml", f"--corpora_root={corpora}",
            f"--backbone={BACKBONE}", f"--output_root={output_root}", "--device=cpu",
            "--max_train_items=8", "--max_eval_items=4", "--batch_size=4", "--eval_batch_size=4",
            *extra]
    return load_main(task)(argv)


def records(output_root, task, frozen):
    path = Path(output_root) / "results.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return [r for r in lines if r["task"] == task and r["frozen"] == frozen]


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "unfrozen"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_end_to_end(task, freeze, corpora, output_root):
    metric = TASKS[task][0]
    reference = load_backbone(BACKBONE)
    brain = run_task(task, corpora, output_root, f"--freeze={freeze}")
    # one record per run and metric, with what the tables need
    main = [r for r in records(output_root, task, freeze) if r["metric"] == metric]
    assert len(main) == 1, records(output_root, task, freeze)
    record = main[0]
    assert record["split"] == "test" and record["steps"] == brain.optimizer_step > 0
    assert record["backbone"] == str(BACKBONE) and record["pretrain_hours"] == pytest.approx(2.0)
    assert 0 <= record["value"] == pytest.approx(brain.test_stats[metric])
    assert math.isfinite(brain.test_stats["loss"])
    if task == "sf":
        names = {r["metric"] for r in records(output_root, task, freeze)}
        assert {"slot_value_cer", "slot_type_f1"} <= names
    # what was trained: the weighted sum (frozen) or the transformer but not the CNN
    upstream = brain.upstream
    trained = dict(upstream.backbone.named_parameters())
    original = dict(reference.named_parameters())
    cnn = [n for n in trained if n.startswith("feature_extractor.")]
    rest = [n for n in trained if not n.startswith("feature_extractor.")]
    assert all(torch.equal(trained[n], original[n]) for n in cnn)
    if freeze:
        assert all(torch.equal(trained[n], original[n]) for n in rest)
        assert upstream.layer_sum.weights.abs().sum() > 0  # left its zero init
    else:
        assert any(not torch.equal(trained[n], original[n]) for n in rest)
        assert upstream.layer_sum is None  # unfrozen: the last layer's output
    # the vocabulary is saved with the run; the per-utterance errors are written
    saved = Path(output_root) / task / f"freeze_{freeze}" / "save" / "label_encoder.txt"
    assert saved.is_file() and len(brain.vocab) == brain.modules.head.output.out_features
    assert (Path(output_root) / task / f"freeze_{freeze}").glob("*_test.txt")


def checkpoints(output_root, task):
    return list((Path(output_root) / task / "freeze_True" / "save").glob("CKPT+*"))


def test_missing_manifest_is_a_clear_error(corpora, tmp_path):
    with pytest.raises(DataPreparationError, match=r"(?s)train-clean-100_phn.csv was not prepared.*"
                                                   r"python -m data_prep.librispeech_phonemes"):
        run_task("pr", corpora, tmp_path, "--skip_prep=True")
    assert not checkpoints(tmp_path, "pr")


def test_unseen_label_is_a_clear_error_before_training(corpora, tmp_path):
    from data_prep.timers_and_such import prepare_timers_and_such

    # a prepared Timers and Such whose test set holds a slot type train never had
    prep = tmp_path / "prep" / "timers_and_such"
    prepare_timers_and_such(corpora / "timers-and-such", prep, progress=False)
    with open(prep / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0]["slot_transcript"] = "SET <volume> TEN </volume>"
    with open(prep / "test.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(VocabularyError, match=rf"(?s)test manifest .*{rows[0]['ID']}: "
                                              r"\['<volume>', '</volume>'\]"):
        run_task("sf", corpora, tmp_path, "--skip_prep=True")
    assert not checkpoints(tmp_path, "sf")


def test_architecture_mismatch_is_a_clear_error(corpora, tmp_path):
    with pytest.raises(CheckpointError):
        run_task("asr", corpora, tmp_path, "--backbone_config={dim: 96}")
    assert not checkpoints(tmp_path, "asr")


def test_another_upstream_does_not_resume_a_run(corpora, output_root):
    # the frozen SF run of test_task_end_to_end is in output_root; the random
    # baseline given the same folders must not recover its head
    if not (Path(output_root) / "sf" / "freeze_True" / "save" / "upstream_identity.txt").is_file():
        run_task("sf", corpora, output_root, "--freeze=True")
    with pytest.raises(ValueError, match=r"holds a run on another upstream.*own output_root"):
        run_task("sf", corpora, output_root, "--freeze=True", "--random_init=True")
