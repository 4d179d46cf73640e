"""Recipes take a checkpoint's architecture from the checkpoint: the paper-
scale downstream and fine-tuning YAMLs (no ``--backbone_config``) accept a
micro wav2vec2, a micro SEW-D and a fairseq ``.pt`` backbone, apply their
own training-time settings (dropouts, layerdrop) to it, and refuse an
architecture key that disagrees with it, naming the key. The hours of audio
a pre-training run saw travel in the backbone file (``save_backbone``
metadata) to the downstream results."""
import json
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from torch import nn

from speechbrain_ext.downstream.recipe import parse_arguments as downstream_arguments
from speechbrain_ext.downstream.results import pretraining_hours
from speechbrain_ext.interop.loading import backbone_metadata, init_backbone
from speechbrain_ext.io import checkpoints
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import (FORMAT, architecture_of, build_backbone,
                                             read_backbone_file, read_backbone_metadata,
                                             save_backbone)
from speechbrain_ext.training.checkpointing import AudioCounter, BackboneSaver, SafeCheckpointer
from speechbrain_ext.training.recipe_cli import parse_arguments

REPO = Path(__file__).resolve().parents[1]
DOWNSTREAM = REPO / "recipes" / "downstream"
FINETUNE = REPO / "recipes" / "finetune"
# the checkpoints' own training-time settings differ from the YAMLs' (0.1, 0.05 / 0.0)
OWN = {"dropout": 0.0, "attention_dropout": 0.0, "dropout_input": 0.0, "layerdrop": 0.2}


@pytest.fixture(scope="module")
def checkpoints_by_kind(tmp_path_factory):
    """``{kind: (path, model)}``: micro wav2vec2 and SEW-D backbone files, and
    the wav2vec2 one as a pre-training save folder."""
    folder = tmp_path_factory.mktemp("ckpts")
    found = {}
    for seed, (kind, zoo) in enumerate((("w2v2", "w2v2_micro"), ("sewd", "sewd_micro"))):
        torch.manual_seed(seed)
        model = build_backbone({"zoo": zoo, **OWN})
        found[kind] = (save_backbone(model, folder / f"{kind}.ckpt"), model)
    save = folder / "save"
    ckpt = save / "CKPT+2024-01-01+00-00-00+00"
    save_backbone(found["w2v2"][1], ckpt / "backbone.ckpt")
    (ckpt / checkpoints.META_FILE).write_text("end-of-epoch: true\nunixtime: 1\n")
    (ckpt / checkpoints.MARKER).write_text("")
    found["save"] = (save, found["w2v2"][1])
    return found


def same_weights(a, b):
    theirs = b.state_dict()
    return all(torch.equal(v, theirs[k]) for k, v in a.state_dict().items())


def dropout_rates(backbone):
    return {m.p for m in backbone.encoder.modules() if isinstance(m, nn.Dropout)}


def downstream_hparams(task, yaml_name, backbone, tmp_path, *extra):
    """A downstream YAML loaded as its recipe loads it (the upstream built)."""
    argv = [str(DOWNSTREAM / task / "hparams" / yaml_name), "--backbone", str(backbone),
            "--output_root", str(tmp_path), "--corpora_root", str(tmp_path), *extra]
    hparams_file, _, overrides = downstream_arguments(argv, DOWNSTREAM / task)
    with open(hparams_file) as f:
        return load_hyperpyyaml(f, overrides)


def finetune_hparams(yaml_name, pretrained, tmp_path, *extra):
    """A fine-tuning YAML loaded as ``recipes/finetune/train.py`` loads it."""
    argv = [f"hparams/{yaml_name}", f"--pretrained={pretrained}", f"--data_folder={tmp_path}",
            f"--output_folder={tmp_path / 'out'}", *extra]
    hparams_file, _, overrides = parse_arguments(
        argv, FINETUNE, path_keys=("data_folder", "librilight_folder", "pretrained", "lm_path"))
    with open(hparams_file) as f:
        return load_hyperpyyaml(f, overrides)


@pytest.mark.parametrize("kind", ["w2v2", "sewd", "save"])
@pytest.mark.parametrize("task,yaml_name", [("kws", "kws.yaml"), ("asr", "asr.yaml")])
def test_paper_scale_downstream_yaml_takes_the_checkpoints_architecture(
        checkpoints_by_kind, kind, task, yaml_name, tmp_path):
    path, model = checkpoints_by_kind[kind]
    upstream = downstream_hparams(task, yaml_name, path, tmp_path, "--freeze", "False")["upstream"]
    backbone = upstream.backbone
    assert type(backbone) is type(model) and same_weights(backbone, model)
    assert upstream.output_dim == model.config.dim == 64
    assert architecture_of(backbone) in upstream.describe()
    # the architecture is the checkpoint's, the training-time settings the YAML's
    mine, theirs = backbone.config.to_dict(), model.config.to_dict()
    yaml_settings = {"dropout": 0.1, "attention_dropout": 0.1, "dropout_input": 0.1, "layerdrop": 0.05}
    assert {k: mine[k] for k in yaml_settings} == yaml_settings
    assert {k: v for k, v in mine.items() if k not in yaml_settings} == \
        {k: v for k, v in theirs.items() if k not in yaml_settings}
    feats, _ = upstream.train()(torch.randn(2, 8000), torch.tensor([1.0, 0.7]))
    assert feats.shape[-1] == 64


def test_every_downstream_yaml_builds_a_sewd_upstream(checkpoints_by_kind, tmp_path):
    path, model = checkpoints_by_kind["sewd"]
    for yaml_file in sorted(DOWNSTREAM.glob("*/hparams/*.yaml")):
        task = yaml_file.parents[1].name
        upstream = downstream_hparams(task, yaml_file.name, path, tmp_path / task)["upstream"]
        assert type(upstream.backbone) is type(model), yaml_file
        assert upstream.output_dim == 64 and not upstream.backbone.training


def test_a_yaml_dropout_override_reaches_the_built_backbone(checkpoints_by_kind, tmp_path):
    for kind in ("w2v2", "sewd"):
        path, _ = checkpoints_by_kind[kind]
        backbone = downstream_hparams("kws", "kws.yaml", path, tmp_path / kind, "--freeze", "False",
                                      "--backbone_config", "{dropout: 0.25}")["upstream"].backbone
        assert backbone.config.dropout == 0.25 and 0.25 in dropout_rates(backbone)
        assert backbone.config.attention_dropout == 0.1  # the YAML's other values stay
    # the checkpoint's own settings without a backbone_config
    path, model = checkpoints_by_kind["w2v2"]
    assert init_backbone(None, path).config == model.config
    assert dropout_rates(init_backbone(None, path)) == {0.0}


def test_a_disagreeing_architecture_key_is_refused_naming_it(checkpoints_by_kind, tmp_path):
    w2v2, _ = checkpoints_by_kind["w2v2"]
    sewd, _ = checkpoints_by_kind["sewd"]
    with pytest.raises(CheckpointError, match=r"another architecture.*\n  dim: checkpoint 64 vs config 96"):
        downstream_hparams("kws", "kws.yaml", w2v2, tmp_path, "--backbone_config", "{dim: 96}")
    with pytest.raises(CheckpointError, match="squeeze_factor: checkpoint 2 vs config 4"):
        downstream_hparams("er", "er.yaml", sewd, tmp_path, "--backbone_config", "{squeeze_factor: 4}")
    with pytest.raises(CheckpointError, match="holds a 'sewd' backbone, but .*zoo: w2v2_base"):
        downstream_hparams("kws", "kws.yaml", sewd, tmp_path, "--backbone_config", "{zoo: w2v2_base}")
    with pytest.raises(CheckpointError, match="sets squeeze_factor, which a 'wav2vec2' backbone"):
        init_backbone({"squeeze_factor": 2}, w2v2)
    with pytest.raises(CheckpointError, match=r"num_layers: checkpoint 2 vs config 12 \(zoo: sewd_tiny\)"):
        init_backbone({"zoo": "sewd_tiny"}, sewd)
    with pytest.raises(CheckpointError, match="dim: checkpoint 64 vs config 768"):
        finetune_hparams("ls100.yaml", sewd, tmp_path, "--backbone_config={dim: 768}")
    # keys that agree are accepted (a YAML may state what it expects)
    agreeing = "{zoo: sewd_micro, dim: 64, conv_layers: " + json.dumps(
        [list(layer) for layer in checkpoints_by_kind["sewd"][1].config.conv_layers]) + "}"
    upstream = downstream_hparams("kws", "kws.yaml", sewd, tmp_path, "--backbone_config", agreeing)
    assert upstream["upstream"].output_dim == 64


@pytest.mark.parametrize("kind", ["w2v2", "sewd", "save"])
def test_paper_scale_finetuning_yaml_takes_the_checkpoints_architecture(
        checkpoints_by_kind, kind, tmp_path):
    path, model = checkpoints_by_kind[kind]
    ctc = finetune_hparams("ls100.yaml", path, tmp_path)["model"]
    assert type(ctc.backbone) is type(model) and same_weights(ctc.backbone, model)
    assert ctc.lm_head.in_features == 64
    config = ctc.backbone.config
    assert (config.dropout, config.layerdrop, config.feature_grad_mult) == (0.1, 0.0, 0.0)
    assert config.num_layers == model.config.num_layers
    ctc.train()
    log_probs, frames = ctc(torch.randn(2, 8000), torch.tensor([1.0, 0.6]))
    assert log_probs.shape[0] == 2 and log_probs.shape[-1] == 29
    assert frames.tolist() == model.frame_lengths(torch.tensor([8000, 4800])).tolist()
    # after the transformer's frozen updates, the encoder learns (CNN frozen)
    ctc.set_num_updates(ctc.freeze_encoder_updates)
    ctc(torch.randn(2, 8000))[0].sum().backward()
    assert all(p.grad is None for p in ctc.backbone.feature_extractor.parameters())
    assert any(p.grad is not None for p in ctc.backbone.encoder.parameters())


def test_finetuning_a_fairseq_checkpoint_with_the_paper_scale_yaml(tmp_path):
    from test_fairseq_safe_load import SMALL, fairseq_arch, fairseq_state, small_model

    model = small_model()
    path = tmp_path / "wav2vec_small.pt"
    torch.save({"model": fairseq_state(model), "cfg": {"model": fairseq_arch()}}, path)
    ctc = finetune_hparams("ll10h.yaml", path, tmp_path)["model"]
    assert same_weights(ctc.backbone, model) and ctc.lm_head.in_features == SMALL.dim
    assert ctc.backbone.config.layer_norm_first and ctc.backbone.config.dropout == 0.1
    upstream = downstream_hparams("sid", "sid.yaml", path, tmp_path)["upstream"]
    assert upstream.output_dim == SMALL.dim
    assert backbone_metadata(path) == {} and pretraining_hours(path) is None


def test_random_initialisation_architecture(tmp_path):
    """pretrained: null builds random_init_architecture (the YAML's wav2vec2-base,
    a zoo model, or the micro override's `make demo` shape) with the YAML's
    training-time settings; backbone_config's architecture keys must agree."""
    scratch = finetune_hparams("ls100.yaml", "null", tmp_path,
                               "--random_init_architecture={zoo: sewd_micro}")["model"]
    assert type(scratch.backbone).__name__ == "SEWDBackbone"
    assert (scratch.backbone.config.dropout, scratch.backbone.config.layerdrop) == (0.1, 0.0)
    micro = finetune_hparams("ls100.yaml", "null", tmp_path, "--overrides_file",
                             "overrides/micro.yaml")["model"]
    config = micro.backbone.config
    assert (config.dim, config.num_layers, config.conv_bias, config.dropout) == (128, 4, False, 0.0)
    paper000 = finetune_hparams("ls100.yaml", "null", tmp_path, "--overrides_file",
                                "overrides/paper000_ls100.yaml",
                                "--random_init_architecture={dim: 64, num_layers: 1, num_heads: 4, "
                                "ffn_dim: 64}")["model"]
    config = paper000.backbone.config
    assert (config.extractor_mode, config.conv_bias, config.normalize_waveform) == \
        ("layer_norm", True, True)
    with pytest.raises(CheckpointError, match="dim: random_init_architecture 64 vs config 128"):
        finetune_hparams("ls100.yaml", "null", tmp_path, "--random_init_architecture={zoo: sewd_micro}",
                         "--backbone_config={dim: 128}")


def test_hours_seen_round_trip_through_the_backbone_file(checkpoints_by_kind, tmp_path):
    _, model = checkpoints_by_kind["sewd"]
    path = save_backbone(model, tmp_path / "b.ckpt", metadata={"hours_seen": 12.5, "updates": 300})
    assert read_backbone_metadata(path) == {"hours_seen": 12.5, "updates": 300}
    assert pretraining_hours(path) == 12.5 and same_weights(read_backbone_file(path), model)
    with pytest.raises(TypeError, match="metadata"):
        save_backbone(model, tmp_path / "c.ckpt", metadata={"hours_seen": torch.tensor(1.0)})
    # through the pre-training checkpointer: the newest complete checkpoint's
    counter, updates = AudioCounter(), [0]
    save = tmp_path / "save"
    checkpointer = SafeCheckpointer(save, recoverables={
        "backbone": BackboneSaver(lambda: model, counter, lambda: updates[0]), "audio_counter": counter})
    for step, seconds in ((10, 1800.0), (20, 5400.0)):
        counter.add(seconds)
        updates[0] = step
        checkpointer.save_checkpoint()
    assert backbone_metadata(save) == {"hours_seen": 2.0, "updates": 20}
    newest = checkpoints.latest_checkpoint(save)
    assert pretraining_hours(save) == pytest.approx(2.0) == pretraining_hours(newest)
    assert pretraining_hours(newest / "backbone.ckpt") == pytest.approx(2.0)
    # the metadata wins over a counter file (it is what the backbone saw)
    (newest / "audio_counter.ckpt").write_text("0.0")
    assert pretraining_hours(save) == pytest.approx(2.0)


def test_backbone_files_written_before_metadata(checkpoints_by_kind, tmp_path):
    """A backbone file of the old layout (no metadata) still loads; its hours
    come from the checkpoint's audio_counter.ckpt, as before."""
    _, model = checkpoints_by_kind["w2v2"]
    ckpt = tmp_path / "save" / "CKPT+old"
    ckpt.mkdir(parents=True)
    torch.save({"format": FORMAT, "architecture": "wav2vec2", "config": model.config.to_dict(),
                "state_dict": model.state_dict()}, ckpt / "backbone.ckpt")
    (ckpt / "audio_counter.ckpt").write_text(repr(9000.0))
    (ckpt / checkpoints.META_FILE).write_text("end-of-epoch: true\nunixtime: 1\n")
    (ckpt / checkpoints.MARKER).write_text("")
    assert same_weights(read_backbone_file(ckpt / "backbone.ckpt"), model)
    assert backbone_metadata(ckpt) == {} == backbone_metadata(tmp_path / "save")
    for source in (tmp_path / "save", ckpt, ckpt / "backbone.ckpt"):
        assert pretraining_hours(source) == pytest.approx(2.5)
    assert pretraining_hours(tmp_path / "nothing") is None
