"""The recipes' command line (``speechbrain_ext.training.recipe_cli``): overrides of
the wrong type fail in ``parse_arguments``, naming the key, before any
training or data preparation; numbers PyYAML reads as strings (``1e-3``)
are converted; and every shipped YAML + overrides combination passes."""
import json
import re
from pathlib import Path

import pytest

from conftest import load_recipe_script
from speechbrain_ext.downstream import recipe as downstream_recipe
from speechbrain_ext.io.data import DataPreparationError
from speechbrain_ext.training.recipe_cli import parse_arguments

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

# The shapes of the recipe YAMLs: scalars, a record list, homogeneous lists,
# a nested mapping, null and tagged values.
HPARAMS = """\
seed: 1986
__set_seed: !apply:torch.manual_seed [!ref <seed>]
data_folder: !PLACEHOLDER
output_folder: !ref results/<seed>
label: null
tune_split: dev-other
train_splits: ["960"]
skip_prep: False
max_updates: 400000
lr_decay_steps: !ref <max_updates> / 400
lr: 0.00001
online_mask: [0.1, 20]
lm_weights: [0.1, 0.2, 2.0]
feature_augment:
    - !new:speechbrain.augment.freq_domain.Warping
        warp_window: 5
backbone_config:
    extractor_mode: layer_norm
    dim: 768
    dropout: 0.1
model: !new:torch.nn.Linear
    in_features: 2
    out_features: 2
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "train.yaml").write_text(HPARAMS)
    return tmp_path


def overrides(folder, *args, **kwargs):
    return parse_arguments(["train.yaml", *args], folder, **kwargs)[2]


def test_wrong_scalar_types_name_the_key(folder):
    with pytest.raises(ValueError, match=re.escape(
            "override lr='abc': expected a float (the YAML has lr: 0.00001)")):
        overrides(folder, "--lr=abc")
    with pytest.raises(ValueError, match=re.escape(
            "override max_updates='ten': expected an int (the YAML has max_updates: 400000)")):
        overrides(folder, "--max_updates=ten")
    with pytest.raises(ValueError, match=r"override max_updates=2\.5: expected an int"):
        overrides(folder, "--max_updates=2.5")
    with pytest.raises(ValueError, match=r"override max_updates=True: expected an int"):
        overrides(folder, "--max_updates=True")  # a bool is an int in Python, not here
    with pytest.raises(ValueError, match=r"override skip_prep=1: expected a bool"):
        overrides(folder, "--skip_prep=1")
    with pytest.raises(ValueError, match=r"override lr=False: expected a float"):
        overrides(folder, "--lr=no")  # YAML 1.1: `no` is False


def test_nested_mapping_names_the_dotted_key(folder):
    with pytest.raises(ValueError, match=re.escape(
            "override backbone_config.dim='abc': expected an int "
            "(the YAML has backbone_config.dim: 768)")):
        overrides(folder, "--backbone_config={dim: abc}")
    with pytest.raises(ValueError, match=r"override backbone_config='abc': expected a mapping"):
        overrides(folder, "--backbone_config=abc")
    # keys the YAML's mapping lacks are merged in by HyperPyYAML: unchecked
    assert overrides(folder, "--backbone_config={dim: 256, conv_layers: [[64, 10, 5]]}") == {
        "backbone_config": {"dim": 256, "conv_layers": [[64, 10, 5]]}}


def test_lists(folder):
    # items of different types: a record, item i checked against the YAML's item i
    with pytest.raises(ValueError, match=re.escape(
            "override online_mask[1]=20.5: expected an int (the YAML has online_mask: [0.1, 20])")):
        overrides(folder, "--online_mask=[0.1, 20.5]")
    assert overrides(folder, "--online_mask=[1, 60, 2]") == {"online_mask": [1, 60, 2]}
    # items of one type: every item checked against it
    with pytest.raises(ValueError, match=r"override lm_weights\[3\]='x': expected a float"):
        overrides(folder, "--lm_weights=[1, 0.5, 2, x]")  # longer than the YAML's list
    assert overrides(folder, "--lm_weights=[1, 0.5, 1e-3]") == {"lm_weights": [1, 0.5, 0.001]}
    with pytest.raises(ValueError, match=r"override train_splits='train-clean-100': expected a list"):
        overrides(folder, "--train_splits=train-clean-100")
    # tagged items (`!new:` objects): only the list itself is checked
    assert overrides(folder, "--feature_augment=[1, a]") == {"feature_augment": [1, "a"]}


def test_numeric_strings_become_numbers(folder):
    # PyYAML (YAML 1.1) reads 1e-3 (no dot) as the string '1e-3'
    lr = overrides(folder, "--lr=1e-3")["lr"]
    assert lr == 0.001 and isinstance(lr, float)
    steps = overrides(folder, "--max_updates=1e5")["max_updates"]
    assert steps == 100000 and isinstance(steps, int)
    assert overrides(folder, "--lr=1") == {"lr": 1}  # an int is a float's value
    assert overrides(folder, "--skip_prep=yes") == {"skip_prep": True}


def test_string_keys_take_the_text_typed(folder):
    assert overrides(folder, "--tune_split=1.10", "--train_splits=[960, dev-clean]") == {
        "tune_split": "1.10", "train_splits": ["960", "dev-clean"]}
    with pytest.raises(ValueError, match=r"override tune_split=\['a'\]: expected a string"):
        overrides(folder, "--tune_split=[a]")


def test_tagged_and_null_values_are_not_checked(folder):
    # a loader that read tags as plain values would see a str, a mapping, a list...
    given = overrides(folder, "--lr_decay_steps={a: 1}", "--output_folder=[1]", "--model=3",
                      "--data_folder=[1, 2]", "--label=[x]")
    assert given == {"lr_decay_steps": {"a": 1}, "output_folder": [1], "model": 3,
                     "data_folder": [1, 2], "label": ["x"]}
    # null switches a limit off, for any key (finetune's batch_seconds: null)
    assert overrides(folder, "--max_updates=null") == {"max_updates": None}


def test_overrides_file_with_a_wrong_type_names_file_and_key(folder):
    (folder / "bad.yaml").write_text("max_updates: 10\nbackbone_config:\n    dropout: high\n")
    with pytest.raises(ValueError, match=re.escape(
            "override backbone_config.dropout='high' in bad.yaml: expected a float")):
        overrides(folder, "--overrides_file", "bad.yaml")
    # the file's values are converted too; the command line still wins
    (folder / "sci.yaml").write_text("lr: 5e-5\nmax_updates: 2e3\n")
    assert overrides(folder, "--overrides_file", "sci.yaml") == {"lr": 5e-5, "max_updates": 2000}
    assert overrides(folder, "--overrides_file", "sci.yaml", "--lr=1e-4")["lr"] == 1e-4


def test_keys_the_yaml_lacks_are_not_checked(folder):
    # a shared file's keys of other recipes are skipped; without skipping,
    # and on the command line, HyperPyYAML reports the unknown key (a typo)
    (folder / "shared.yaml").write_text("lr: 0.5\nema_decay: [not, a, float]\n")
    assert overrides(folder, "--overrides_file", "shared.yaml", skip_unknown_file_keys=True) == {
        "lr": 0.5}
    assert overrides(folder, "--overrides_file", "shared.yaml", "--lr_typo=x") == {
        "lr": 0.5, "ema_decay": ["not", "a", "float"], "lr_typo": "x"}


# ---- every shipped YAML + overrides file --------------------------------------
DOWNSTREAM = RECIPES / "downstream"
CTC_TASKS = ("asr", "asr_zh", "pr", "sf")


def shipped_combinations():
    """(recipe folder, parse function, hparams file, overrides files): every
    recipe YAML with its family's override files as the README, Makefile,
    tests and run_suite.py use them (and more: each file with every YAML)."""
    pretrain = lambda argv, d: parse_arguments(argv, d, skip_unknown_file_keys=True)
    # as recipes/finetune/train.py: no file keys skipped (stricter: all checked)
    finetune = lambda argv, d: parse_arguments(
        argv, d, path_keys=("data_folder", "librilight_folder", "pretrained", "lm_path"))
    for family, parse in (("pretrain", pretrain), ("finetune", finetune)):
        recipe = RECIPES / family
        for yaml_file in sorted((recipe / "hparams").glob("*.yaml")):
            for override in sorted((recipe / "overrides").glob("*.yaml")):
                yield recipe, parse, yaml_file, [f"overrides/{override.name}"]
    for yaml_file in sorted(DOWNSTREAM.glob("*/hparams/*.yaml")):
        task = yaml_file.parents[1].name
        second = "micro_ctc.yaml" if task in CTC_TASKS else "micro_suite.yaml"
        for files in (["micro.yaml"], ["micro.yaml", second]):
            yield (DOWNSTREAM / task, downstream_recipe.parse_arguments, yaml_file,
                   [f"../overrides/{name}" for name in files])


COMBINATIONS = list(shipped_combinations())


def test_every_recipe_yaml_is_covered():
    covered = {c[2] for c in COMBINATIONS}
    assert covered == set(RECIPES.glob("**/hparams/*.yaml")) and len(covered) >= 20
    overrides_files = {(c[0] / f).resolve() for c in COMBINATIONS for f in c[3]}
    assert overrides_files == {p.resolve() for p in RECIPES.glob("**/overrides/*.yaml")}


@pytest.mark.parametrize("recipe,parse,yaml_file,files", COMBINATIONS,
                         ids=[f"{c[2].relative_to(RECIPES)}+{'+'.join(Path(f).name for f in c[3])}"
                              for c in COMBINATIONS])
def test_shipped_combination_passes(recipe, parse, yaml_file, files):
    argv = [str(yaml_file)] + [arg for f in files for arg in ("--overrides_file", f)]
    if yaml_file.name == "ls960.yaml" and files == ["overrides/micro.yaml"] and \
            (REPO / "data" / "mini" / "LibriSpeech" / ".synthetic.json").is_file():
        # the micro override keeps ls960's 960 h training splits, which the
        # embedded corpus lacks: refused before any preparation, saying what to add
        with pytest.raises(DataPreparationError, match=re.escape("--train_splits=[train-clean-100]")):
            parse(argv, recipe)
        return
    _, _, values = parse(argv, recipe)
    assert values  # the files were read, not skipped whole


def test_command_lines_of_the_tests_pass(tmp_path):
    """Overrides the test suite and benchmarks pass (false alarms would block them)."""
    model = ("--backbone_config={conv_layers: [[32, 10, 5], [32, 3, 2]], dim: 32, num_layers: 2, "
             "num_heads: 2, ffn_dim: 64, pos_conv_kernel: 16, pos_conv_groups: 4, layerdrop: 0.0}")
    _, _, values = parse_arguments(
        ["hparams/nc_1s.yaml", "--overrides_file", "overrides/micro.yaml", model,
         f"--output_folder={tmp_path}", "--max_updates=4", "--log_interval=1", "--split_length=1",
         "--batch_seconds=80.0", "--online_mask=[0.1, 60]", "--skip_prep=True",
         f"--data_folder={tmp_path}"], RECIPES / "pretrain", skip_unknown_file_keys=True)
    assert values["batch_seconds"] == 80 and values["backbone_config"]["dim"] == 32
    backbone = json.dumps({"extractor_mode": "layer_norm", "conv_layers": [[32, 10, 5]], "dim": 32})
    _, _, values = parse_arguments(
        ["hparams/ll10h.yaml", "--overrides_file", "overrides/micro.yaml", f"--pretrained={tmp_path}",
         "--max_utterances=6", "--max_updates=3", "--freeze_encoder_updates=1", "--batch_seconds=30",
         "--lm_weights=[1.0]", "--word_scores=[0.0, 0.5]", "--beam_size=5", "--number_of_epochs=1",
         f"--backbone_config={backbone}"], RECIPES / "finetune")
    assert values["backbone_config"]["extractor_mode"] == "layer_norm"
    _, _, values = downstream_recipe.parse_arguments(
        ["hparams/kws.yaml", "--overrides_file", "../overrides/micro.yaml", "--corpora_root",
         str(tmp_path), "--backbone", str(tmp_path), "--num_classes", "35", "--freeze", "False",
         "--label", "random:CKPT", "--seed", "3", "--max_train_items=8"], DOWNSTREAM / "kws")
    assert values["num_classes"] == 35 and values["freeze"] is False


def test_recipe_fails_before_preparing_anything(tmp_path):
    """End to end through the pre-training recipe's main(): the override's
    error, not a TypeError deep in torch, and no output folder yet."""
    train = load_recipe_script(RECIPES / "pretrain" / "train.py", "pretrain_recipe_train_cli")
    out, data = tmp_path / "out", tmp_path / "LibriSpeech"
    data.mkdir()  # exists: without the check, the recipe would go on to prepare it
    with pytest.raises(ValueError, match=re.escape("override lr='abc': expected a float")):
        train.main(["hparams/nc_5s.yaml", "--overrides_file", "overrides/micro.yaml",
                    f"--output_folder={out}", f"--data_folder={data}", "--device=cpu", "--lr=abc"])
    assert not out.exists() and not any(data.iterdir())


def test_variant_files_load_their_base_with_their_keys(tmp_path):
    """hparams/nc_1s.yaml-style variants: the base YAML with the variant's
    keys as the first overrides (files and the command line win), checked
    like any override; a missing base is named."""
    (tmp_path / "base.yaml").write_text("split_length: 5\nlr: 0.1\nname: !ref run_<split_length>\n")
    (tmp_path / "v1.yaml").write_text("variant_of: base.yaml\nsplit_length: 1\n")
    (tmp_path / "o.yaml").write_text("split_length: 3\n")
    hparams_file, _, overrides = parse_arguments(["v1.yaml"], tmp_path)
    assert Path(hparams_file).name == "base.yaml" and overrides == {"split_length": 1}
    _, _, overrides = parse_arguments(["v1.yaml", "--overrides_file", "o.yaml", "--lr=0.5"], tmp_path)
    assert overrides == {"split_length": 3, "lr": 0.5}
    (tmp_path / "bad.yaml").write_text("variant_of: base.yaml\nsplit_length: one\n")
    with pytest.raises(ValueError, match=r"split_length='one'.*bad\.yaml"):
        parse_arguments(["bad.yaml"], tmp_path)
    (tmp_path / "orphan.yaml").write_text("variant_of: nowhere.yaml\nsplit_length: 1\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        parse_arguments(["orphan.yaml"], tmp_path)


# ---- what a newcomer meets (issue 20) ------------------------------------------
def fake_embedded_corpus(folder, splits=("train-clean-100", "dev-clean")):
    """A folder marked as data_prep.synthetic marks the embedded corpora."""
    for split in splits:
        (folder / split).mkdir(parents=True)
    (folder / ".synthetic.json").write_text("{}")
    return folder


def test_paper_yaml_on_the_embedded_corpus_names_the_override(tmp_path):
    corpus = fake_embedded_corpus(tmp_path / "LibriSpeech")
    argv = ["hparams/nc_5s.yaml", f"--data_folder={corpus}"]
    with pytest.raises(DataPreparationError) as err:
        parse_arguments(argv, RECIPES / "pretrain", skip_unknown_file_keys=True)
    message = str(err.value)
    assert "train_splits ['960']" in message
    assert "--overrides_file overrides/micro.yaml" in message
    assert "--train_splits=[train-clean-100]" in message
    # either fix the README names is taken
    parse_arguments(argv + ["--train_splits=[train-clean-100]"], RECIPES / "pretrain")
    parse_arguments(["hparams/nc_5s.yaml", "--overrides_file", "overrides/micro.yaml", *argv[1:]],
                    RECIPES / "pretrain", skip_unknown_file_keys=True)


def test_real_corpora_are_left_to_the_preparation(tmp_path):
    """No marker: the 960 shorthand is data_prep's to expand, not an error here."""
    corpus = tmp_path / "LibriSpeech"
    (corpus / "train-clean-100").mkdir(parents=True)
    parse_arguments(["hparams/nc_5s.yaml", f"--data_folder={corpus}"], RECIPES / "pretrain")


@pytest.mark.parametrize("recipe,hparams,own", [
    ("pretrain", "hparams/seq_5s.yaml", ["--init_from CKPT", "--train_splits", "init_from:"]),
    ("finetune", "hparams/ls100.yaml", ["--pretrained CKPT", "--lm_path ARPA", "lm_path: null"]),
    ("downstream/kws", "hparams/kws.yaml", ["--backbone CKPT", "../overrides/micro.yaml",
                                            "freeze:"]),
])
def test_help_lists_the_recipes_own_options_and_keys(recipe, hparams, own, capsys):
    parse = downstream_recipe.parse_arguments if recipe.startswith("downstream") else \
        (lambda argv, d: parse_arguments(argv, d))
    with pytest.raises(SystemExit) as done:
        parse([hparams, "--help"], RECIPES / recipe)
    assert done.value.code == 0
    text = capsys.readouterr().out
    for needed in ["--overrides_file FILE", "--max_updates N", "--key=value",
                   "SpeechBrain run options", "--device", *own]:
        assert needed in text, needed
    assert "__set_seed" not in text


def test_help_without_a_yaml_lists_the_hparams_files(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["-h"], RECIPES / "pretrain")
    assert "hparams/nc_5s.yaml" in capsys.readouterr().out


def test_downstream_max_updates_is_the_step_limit(tmp_path):
    _, run_opts, values = downstream_recipe.parse_arguments(
        ["hparams/kws.yaml", "--overrides_file", "../overrides/micro.yaml", "--backbone",
         str(tmp_path), "--max_updates=2"], DOWNSTREAM / "kws")
    assert run_opts.optimizer_step_limit == 2 and "max_updates" not in values
    _, run_opts, _ = downstream_recipe.parse_arguments(
        ["hparams/kws.yaml", "--overrides_file", "../overrides/micro.yaml", "--backbone",
         str(tmp_path)], DOWNSTREAM / "kws")
    assert run_opts.optimizer_step_limit is None


def test_micro_checkpoint_with_a_paper_architecture_names_the_micro_override(tmp_path):
    from speechbrain_ext.io.checkpoints import CheckpointError
    from speechbrain_ext.models.registry import save_backbone
    from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

    ckpt = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tmp_path / "micro.ckpt")
    with pytest.raises(CheckpointError, match=re.escape("--overrides_file ../overrides/micro.yaml")):
        downstream_recipe.load_recipe(["hparams/kws.yaml", "--backbone", str(ckpt),
                                       "--corpora_root", str(tmp_path), "--output_root",
                                       str(tmp_path / "out"), "--backbone_config={dim: 768}"],
                                      DOWNSTREAM / "kws")
    assert not (tmp_path / "out").exists()


def test_no_torchvision_warning_at_start_up():
    """SpeechBrain's train_logger import logs it when torchvision is absent;
    a recipe (recipe_cli imported first) does not."""
    import subprocess
    import sys

    def stderr(code):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=REPO, check=True).stderr

    if "torchvision is not available" not in stderr("import speechbrain.utils.train_logger"):
        pytest.skip("torchvision is installed: SpeechBrain does not warn")
    assert "torchvision" not in stderr("import speechbrain_ext.training.recipe_cli\n"
                                       "import speechbrain.utils.train_logger")
