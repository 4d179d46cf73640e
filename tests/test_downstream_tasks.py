"""Every utterance-level downstream recipe (KWS, ER, SID, ASV, IC) end to end
at micro scale on the synthetic corpora: the result record is written with
the metric the recipe computed, the metric agrees with an independent
recomputation, a frozen backbone is untouched, and (KWS, the representative
unfrozen run) an unfrozen one is trained, its CNN excepted. Bad inputs fail
before training starts.

Recipes run in this process on tiny subsets that keep every label (the
first k training utterances of each class / speaker / intent), one epoch
(two for the feature-cache check), long utterances cropped to 2 s: they test
the plumbing and the records,
not scores."""
import importlib.util
import json
import logging
from pathlib import Path

import pytest
import speechbrain as sb
import speechbrain.utils.logger
import torch
import yaml

from speechbrain_ext.downstream.recipe import UnseenLabelError
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
from speechbrain_ext.training.recipe_cli import yaml_keys

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "downstream"
MICRO = RECIPES / "overrides" / "micro.yaml"


def load_recipe_module(task):
    spec = importlib.util.spec_from_file_location(f"downstream_{task}_train",
                                                  RECIPES / task / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def micro_backbone(tmp_path_factory):
    """A randomly initialised backbone of the micro override's architecture."""
    config = Wav2Vec2Config.from_dict(yaml.safe_load(MICRO.read_text())["backbone_config"])
    torch.manual_seed(0)
    return save_backbone(Wav2Vec2Backbone(config), tmp_path_factory.mktemp("bb") / "backbone.ckpt")


@pytest.fixture(scope="module")
def run_task(mini_corpus, micro_backbone, tmp_path_factory):
    root, _ = mini_corpus
    out = tmp_path_factory.mktemp("downstream")

    def run(task, yaml_name, *extra):
        module = load_recipe_module(task)
        argv = [str(RECIPES / task / "hparams" / yaml_name), "--overrides_file", str(MICRO),
                "--corpora_root", str(root), "--backbone", str(micro_backbone),
                "--output_root", str(out), "--device", "cpu", *extra]
        return module.main(argv), out / "results.jsonl"

    with pytest.MonkeyPatch.context() as patch:
        # SpeechBrain's env.log runs `pip freeze` (~1.5 s) in every experiment folder
        patch.setattr(speechbrain.utils.logger, "get_environment_description", lambda: "")
        yield run


def last_record(path, **match):
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    records = [r for r in records if all(r.get(k) == v for k, v in match.items())]
    assert records, f"no result record {match} in {path}"
    return records[-1]


def recomputed_accuracy(brain, dataset, batch_size=8):
    """Accuracy of the best checkpoint's head, recomputed outside the Brain."""
    from speechbrain.dataio.dataloader import make_dataloader

    brain.modules.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in make_dataloader(dataset, batch_size=batch_size):
            logits = brain.compute_forward(batch, None)
            targets = getattr(batch, f"{brain.hparams.label_key}_encoded").data.flatten()
            correct += int((logits.argmax(-1) == targets).sum())
            total += len(targets)
    return 100.0 * correct / total


def backbone_changes(brain, path):
    """(CNN changed, transformer changed) relative to the checkpoint."""
    original = torch.load(path, weights_only=True)["state_dict"]
    current = brain.upstream.backbone.state_dict()
    changed = {name for name, value in current.items() if not torch.equal(value, original[name])}
    cnn = any(n.startswith("feature_extractor.") for n in changed)
    return cnn, any(n.startswith("encoder.") for n in changed)


@pytest.fixture
def log_messages():
    """INFO messages of the downstream Brain during a test."""
    messages = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    brain_logger = logging.getLogger("speechbrain_ext.downstream.brain")
    brain_logger.addHandler(handler)
    yield messages
    brain_logger.removeHandler(handler)


def check_record(brain, results, task, frozen, backbone):
    record = last_record(results, task=task, frozen=frozen)
    assert record["metric"] == "acc" and record["split"] == "test"
    assert record["value"] == pytest.approx(brain.test_stats["acc"])
    assert record["steps"] == brain.optimizer_step > 0
    assert record["backbone"] == str(backbone) and record["pretrain_hours"] is None
    return record


def test_kws_frozen_with_the_feature_cache(run_task, micro_backbone, log_messages):
    brain, results = run_task("kws", "kws.yaml", "--max_train_items_per_label", "2",
                              "--max_eval_items", "12", "--number_of_epochs", "2",
                              "--feature_cache", str(micro_backbone.parent / "cache"))
    assert len(brain.hparams.modules["head"].classifier.weight) == 12
    record = check_record(brain, results, "kws12", True, micro_backbone)
    test_set = load_recipe_module("kws").dataio_prep(brain.hparams.__dict__)["test"]
    assert len(test_set) == 12
    assert recomputed_accuracy(brain, test_set) == pytest.approx(record["value"])
    assert backbone_changes(brain, micro_backbone) == (False, False)
    assert "upstream" not in brain.optimizers_dict
    # epoch 1 fills the cache; epoch 2 reads every valid utterance from it
    valid = [m for m in log_messages if m.startswith("valid: feature cache used")]
    assert valid[0].startswith("valid: feature cache used: 0 utterances read")
    assert valid[1].startswith("valid: feature cache used: 12 utterances read")
    assert valid[1].endswith("0 computed by the backbone and stored")


def test_kws_unfrozen_trains_the_encoder_but_not_the_cnn(run_task, micro_backbone, log_messages):
    brain, results = run_task("kws", "kws.yaml", "--freeze", "False",
                              "--max_train_items_per_label", "1", "--max_eval_items", "8")
    record = check_record(brain, results, "kws12", False, micro_backbone)
    test_set = load_recipe_module("kws").dataio_prep(brain.hparams.__dict__)["test"]
    assert recomputed_accuracy(brain, test_set) == pytest.approx(record["value"])
    assert backbone_changes(brain, micro_backbone) == (False, True)
    assert sorted(brain.optimizers_dict) == ["head", "upstream"]
    assert not [m for m in log_messages if "feature cache used" in m]


def test_kws35(run_task, micro_backbone):
    brain, results = run_task("kws", "kws.yaml", "--num_classes", "35",
                              "--max_train_items_per_label", "1", "--max_eval_items", "8")
    assert brain.modules.head.classifier.out_features == 35
    check_record(brain, results, "kws35", True, micro_backbone)
    from speechbrain.dataio.encoder import CategoricalEncoder

    encoder = CategoricalEncoder()
    encoder.load(Path(brain.hparams.save_folder) / "label_encoder.txt")
    assert len(encoder) == 35


def test_bad_inputs_fail_before_training(run_task, tmp_path, monkeypatch):
    from speechbrain_ext.io.checkpoints import CheckpointError
    from speechbrain_ext.io.data import DataPreparationError

    trained = []
    monkeypatch.setattr(sb.Brain, "fit", lambda *args, **kwargs: trained.append(1))
    with pytest.raises(CheckpointError, match="(?s)another architecture.*dim: checkpoint 128 vs"):
        run_task("kws", "kws.yaml", "--backbone_config", "{dim: 256}")
    with pytest.raises(DataPreparationError, match="kws12_train.csv was not prepared; run"):
        run_task("kws", "kws.yaml", "--skip_prep", "True", "--prep_folder", str(tmp_path))
    # a valid/test label the training subset never saw (8 of 35 words)
    with pytest.raises(UnseenLabelError, match="label 'label' of valid .* absent from train"):
        run_task("kws", "kws.yaml", "--num_classes", "35", "--max_train_items", "8")
    # a command-line key the YAML lacks is a typo (override files may hold other tasks' keys)
    with pytest.raises(KeyError, match="embedding_dim"):
        run_task("kws", "kws.yaml", "--embedding_dim", "8")
    assert not trained


def test_er_averages_the_folds(run_task):
    brain, results = run_task("er", "er.yaml", "--folds", "[1, 2]",
                              "--max_train_items_per_label", "2", "--max_eval_items", "8",
                              "--max_seconds", "2")
    per_fold = {fold: last_record(results, task="er", split=f"test_fold{fold}")["value"]
                for fold in (1, 2)}
    assert per_fold == brain.fold_accuracies
    # 8 utterances, batches of 8, no gradient accumulation at micro scale (er.yaml: 8)
    assert last_record(results, task="er", split="test_fold1")["steps"] == 1
    mean = last_record(results, task="er", split="test")
    assert mean["value"] == pytest.approx((per_fold[1] + per_fold[2]) / 2)
    assert {int(k): v for k, v in mean["folds"].items()} == per_fold
    # the last fold's brain tested on Session 2 (fold k tests on Session k)
    test_set = load_recipe_module("er").dataio_prep(brain.hparams.__dict__, 2)["test"]
    assert recomputed_accuracy(brain, test_set) == pytest.approx(per_fold[2])


def test_sid(run_task, micro_backbone):
    brain, results = run_task("sid", "sid.yaml", "--num_classes", "24",
                              "--max_train_items_per_label", "1", "--max_eval_items", "8",
                              "--max_seconds", "2")
    record = check_record(brain, results, "sid", True, micro_backbone)
    datasets = load_recipe_module("sid").dataio_prep(brain.hparams.__dict__)
    assert len(datasets["train"]) == 24  # one utterance of every speaker
    assert max(len(item["sig"]) for item in datasets["test"]) <= 32000  # the first 2 seconds
    assert recomputed_accuracy(brain, datasets["test"]) == pytest.approx(record["value"])
    assert backbone_changes(brain, micro_backbone) == (False, False)


def test_asv(run_task):
    import csv

    from speechbrain_ext.downstream.metrics import equal_error_rate

    brain, results = run_task("asv", "asv.yaml", "--num_classes", "18",
                              "--max_train_items_per_label", "1", "--max_eval_items", "6",
                              "--max_test_items_per_speaker", "3", "--max_seconds", "2")
    record = last_record(results, task="asv")
    assert record["metric"] == "eer" and record["value"] == pytest.approx(brain.eer)
    # the trials are those among the first 3 test utterances of each speaker
    prep = Path(brain.hparams.prep_folder)
    kept, per_speaker = set(), {}
    with open(prep / "veri_test.csv") as f:
        for row in csv.DictReader(f):
            if per_speaker.setdefault(row["spk_id"], 0) < 3:
                per_speaker[row["spk_id"]] += 1
                kept.add(row["ID"])
    with open(prep / "veri_trials.csv") as f:
        trials = [t for t in csv.DictReader(f) if t["enrol"] in kept and t["test"] in kept]
    labels = [int(t["label"]) for t in trials]
    assert record["trials"] == len(trials) and 0 < sum(labels) < len(labels)
    assert set(brain.embeddings) == {u for t in trials for u in (t["enrol"], t["test"])}
    # the same EER from the embeddings, scored here
    scores = [float(torch.nn.functional.normalize(brain.embeddings[t["enrol"]], dim=0)
                    @ torch.nn.functional.normalize(brain.embeddings[t["test"]], dim=0))
              for t in trials]
    assert 100 * equal_error_rate(scores, labels) == pytest.approx(record["value"], abs=1e-4)


def test_ic(run_task, micro_backbone):
    from speechbrain.dataio.dataloader import make_dataloader

    brain, results = run_task("ic", "ic.yaml", "--max_train_items_per_label", "1",
                              "--max_eval_items", "8")
    record = check_record(brain, results, "ic", True, micro_backbone)
    assert brain.modules.head.classifier.out_features == 24
    datasets = load_recipe_module("ic").dataio_prep(brain.hparams.__dict__)
    assert len(datasets["train"]) == 31  # one utterance of every intent of the synthetic FSC
    # accuracy = all three slots right, recomputed
    brain.modules.eval()
    right = total = 0
    with torch.no_grad():
        for batch in make_dataloader(datasets["test"], batch_size=8):
            logits = brain.compute_forward(batch, None)
            ok = torch.ones(len(batch.id), dtype=torch.bool)
            for slot, block in zip(("action", "object", "location"), logits.split([6, 14, 4], -1)):
                ok &= block.argmax(-1) == getattr(batch, f"{slot}_encoded").data.flatten()
            right, total = right + int(ok.sum()), total + len(ok)
    assert 100.0 * right / total == pytest.approx(record["value"])


def test_override_files_name_only_keys_of_the_recipes():
    """Override files may hold keys of other tasks (skipped per task), so a
    key no downstream YAML defines would be silently ignored: a typo."""
    keys = set()
    for yaml_file in RECIPES.glob("*/hparams/*.yaml"):
        keys |= yaml_keys(yaml_file)
    for name in ("micro.yaml", "micro_suite.yaml", "micro_ctc.yaml"):
        unknown = set(yaml.safe_load((RECIPES / "overrides" / name).read_text())) - keys
        assert not unknown, f"overrides/{name}: no recipe YAML defines {sorted(unknown)}"


def test_run_suite_commands(tmp_path):
    spec = importlib.util.spec_from_file_location("run_suite", RECIPES / "run_suite.py")
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    args, passthrough = suite.parse(["CKPT", "--frozen", "--unfrozen", "--micro", "--tasks", "kws35",
                                     "asr", "--output_root", str(tmp_path), "--", "--seed", "3"])

    def options(cmd):
        files = [Path(cmd[i + 1]).name for i, arg in enumerate(cmd) if arg == "--overrides_file"]
        pairs = {arg: cmd[i + 1] for i, arg in enumerate(cmd)
                 if arg.startswith("--") and arg != "--overrides_file"}
        return files, pairs

    files, pairs = options(suite.command(args, "kws35", True, passthrough))
    assert files == ["micro.yaml", "micro_suite.yaml"]
    assert pairs["--num_classes"] == "35" and pairs["--freeze"] == "True"
    assert pairs["--feature_cache"] == str(tmp_path / "feature_cache")
    assert pairs["--label"] == "CKPT" and pairs["--seed"] == "3"
    files, pairs = options(suite.command(args, "kws35", False, passthrough))
    assert files == ["micro.yaml"] and "--feature_cache" not in pairs
    files, pairs = options(suite.command(args, "asr", True, passthrough))
    assert files == ["micro.yaml", "micro_ctc.yaml"] and "--feature_cache" not in pairs
    args, _ = suite.parse(["CKPT", "--frozen", "--random_init"])
    cmd = suite.command(args, "sid", True, [])
    assert cmd[cmd.index("--random_init") + 1] == "True"
    assert cmd[cmd.index("--label") + 1] == "random:CKPT" and "--feature_cache" not in cmd


UNFROZEN_RUNS = {
    "er": ("er", "er.yaml", "--folds", "[1]", "--max_train_items_per_label", "1",
           "--max_eval_items", "4", "--max_seconds", "2"),
    "sid": ("sid", "sid.yaml", "--num_classes", "24", "--max_train_items_per_label", "1",
            "--max_eval_items", "4", "--max_seconds", "1"),
    "asv": ("asv", "asv.yaml", "--num_classes", "18", "--max_train_items_per_label", "1",
            "--max_eval_items", "4", "--max_test_items_per_speaker", "2", "--max_seconds", "1"),
    "ic": ("ic", "ic.yaml", "--max_train_items_per_label", "1", "--max_eval_items", "4"),
}


@pytest.mark.parametrize("task", sorted(UNFROZEN_RUNS))
def test_unfrozen_end_to_end(run_task, micro_backbone, task):
    """Every utterance-level task also fine-tunes the backbone (CNN frozen)."""
    brain, results = run_task(*UNFROZEN_RUNS[task], "--freeze", "False")
    record = last_record(results, task=task, frozen=False)
    assert record["split"] == "test" and record["steps"] == brain.optimizer_step > 0
    assert sorted(brain.optimizers_dict) == ["head", "upstream"]
    assert backbone_changes(brain, micro_backbone) == (False, True)
