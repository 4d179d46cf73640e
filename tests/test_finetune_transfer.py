"""Fine-tuning on paper 002 Table 5's transfer corpora (TED-LIUM 3,
VoxPopuli, Fisher + Switchboard; hparams/ted10h.yaml, voxpopuli10h.yaml,
swbd10h.yaml): each YAML loads with the micro override and its data
pipeline prepares and reads the synthetic corpus; a two-update micro run
writes wer.json with the corpus's splits; a transcript character outside
the letter vocabulary is an error naming the manifest and the utterance."""
import csv
import json
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from conftest import load_recipe_script
from speechbrain_ext.downstream.vocabulary import VocabularyError
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
from speechbrain_ext.training.recipe_cli import parse_arguments

REPO = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO / "recipes" / "finetune"
MICRO = "overrides/micro_transfer.yaml"
# YAML -> (its corpus folder, the data_prep.synthetic key that writes it)
YAMLS = {"ted10h.yaml": ("TEDLIUM_release-3", "tedlium3"),
         "voxpopuli10h.yaml": ("voxpopuli", "voxpopuli_en"),
         "swbd10h.yaml": ("fisher_swbd", "fisher_swbd")}


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_script(RECIPE_DIR / "train.py", "finetune_transfer_recipe_train")


@pytest.fixture(scope="module")
def transfer_root(mini_root):
    """The synthetic transfer corpora (generated once, reused when complete)."""
    from data_prep.synthetic import generate

    generate(mini_root, seed=0, size="mini", corpora=[key for _, key in YAMLS.values()], log=lambda *a: None)
    return mini_root


def load(yaml_name, root, out, *args):
    hparams_file, _, overrides = parse_arguments(
        [f"hparams/{yaml_name}", "--overrides_file", MICRO, "--pretrained=null",
         f"--corpus_folder={root / YAMLS[yaml_name][0]}", f"--output_folder={out}", *args], RECIPE_DIR,
        path_keys=("corpus_folder",))
    with open(hparams_file) as f:
        return load_hyperpyyaml(f, overrides)


@pytest.mark.parametrize("yaml_name", list(YAMLS))
def test_yaml_loads_with_the_micro_override_and_prepares_its_corpus(yaml_name, recipe, transfer_root, tmp_path):
    hparams = load(yaml_name, transfer_root, tmp_path / "run")
    assert hparams["train_corpus"] in recipe.TRANSFER_CORPORA and hparams["train_splits"] == "train-10h"
    assert hparams["eval_splits"] == ["dev", "test"] and hparams["tune_split"] == "dev"
    assert hparams["model"].lm_head.out_features == len(hparams["vocabulary"]) == 29
    (train_csv, train_root), evals = recipe.prepare_data(hparams)
    assert sorted(evals) == ["dev", "test"]
    for split, (path, root) in [("train-10h", (train_csv, train_root)), *evals.items()]:
        assert path.is_file() and split in path.name, path
        with open(path) as f:
            rows = list(csv.DictReader(f))
        assert rows, f"{path}: no utterance"
        assert all(set(r["wrd"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ") for r in rows)
        dataset = recipe.make_dataset(path, root, hparams["vocabulary"])
        item = dataset[0]
        # the signal is the row's utterance (a sample range of a talk / side
        # for TED-LIUM and Fisher + Switchboard), not the whole file
        assert abs(item["sig"].shape[0] - float(rows[0]["duration"]) * 16000) <= 1
        assert item["tokens"].tolist() == hparams["vocabulary"].encode(rows[0]["wrd"])


def test_micro_finetuning_on_tedlium_writes_wer_of_its_splits(recipe, transfer_root, tmp_path):
    torch.manual_seed(0)
    config = Wav2Vec2Config.micro(extractor_mode="layer_norm")
    pretrained = save_backbone(Wav2Vec2Backbone(config), tmp_path / "backbone.ckpt")
    out = tmp_path / "run"
    brain, results = recipe.main([
        # as reproduce's micro chain gives it: overrides/micro.yaml first, this YAML's micro file after
        "hparams/ted10h.yaml", "--overrides_file", "overrides/micro.yaml", "--overrides_file", MICRO,
        f"--pretrained={pretrained}",
        f"--corpus_folder={transfer_root / 'TEDLIUM_release-3'}", f"--output_folder={out}",
        "--max_updates=2", "--max_utterances=4", "--freeze_encoder_updates=1", "--number_of_epochs=1",
        "--lm_weights=[0.5]", "--word_scores=[0.0]", "--beam_size=4", "--no_lm_beam_size=4", "--device=cpu"])
    assert brain.optimizer_step == 2
    saved = json.loads((out / "wer.json").read_text())
    assert saved["setting"] == "ted10h" and saved["updates"] == 2
    for split in ("dev", "test"):
        assert set(saved[split]) == {"greedy", "beam_no_lm", "lm"}
        assert saved[split]["greedy"]["WER"] >= 0 and saved[split]["lm"]["WER"] >= 0
    assert not {"dev-clean", "test-clean", "dev-other"} & set(saved)
    assert (out / "lm_3gram.arpa").is_file()


def test_out_of_vocabulary_character_names_the_manifest_and_utterance(recipe, transfer_root, tmp_path):
    hparams = load("voxpopuli10h.yaml", transfer_root, tmp_path / "run")
    (train_csv, root), _ = recipe.prepare_data(hparams)
    with open(train_csv) as f:
        rows = list(csv.DictReader(f))
        columns = list(rows[0])
    rows[1]["wrd"] = rows[1]["wrd"] + " CAFÉ"  # an accent data_prep would have stripped
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(VocabularyError) as err:
        recipe.make_dataset(bad, root, hparams["vocabulary"])
    message = str(err.value)
    assert rows[1]["ID"] in message and str(bad) in message and "'É'" in message


def test_table5_chain_fine_tunes_with_the_corpus_yaml_and_reads_test_wer(tmp_path):
    """Paper 002 Table 5 at paper scale: the released W2V2-base (--checkpoint)
    or the 400k-update SEW-D pre-training, then the corpus's YAML; the metric
    reads the test split of wer.json. Every step's YAML loads (meta device)."""
    from speechbrain_ext.reproduce.chain import Options, plan_cell
    from speechbrain_ext.reproduce.checks import check_plan
    from speechbrain_ext.reproduce.registry import find_cells

    for row, column, yaml_name, decoding in (("W2V2-base", "TL3 test", "ted10h.yaml", "greedy"),
                                             ("SEW-D-mid", "VP test LM", "voxpopuli10h.yaml", "lm"),
                                             ("SEW-D-base+", "F+SB test", "swbd10h.yaml", "greedy")):
        cell, = find_cells("paper002", "table5", row, column)
        released = row == "W2V2-base"
        options = Options(scale="paper", output_root=str(tmp_path),
                          checkpoint=str(tmp_path / "wav2vec_small.pt") if released else None)
        plan = plan_cell(cell, options)
        assert [s.kind for s in plan] == (["finetune", "metric"] if released else ["pretrain", "finetune", "metric"])
        assert f"hparams/{yaml_name}" in plan[-2].argv
        assert plan[-1].spec["split"] == "test" and plan[-1].spec["decoding"] == decoding
        assert "CTCFineTuneModel" in check_plan(plan, cell, {})
