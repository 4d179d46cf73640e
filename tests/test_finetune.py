"""CTC fine-tuning model: parity with HF Wav2Vec2ForCTC (every architecture:
test_finetune_parity.py), freezing schedule, vocabulary checks, channel
masking, and tiny end-to-end runs of the recipe (wav2vec2, SEW-D, a
pre-training save folder with paper 000's override, an exact resume, a
checkpoint of another vocabulary refused)."""
import json
from pathlib import Path

import pytest
import torch

from conftest import load_recipe_script
from speechbrain_ext.downstream.finetune import CTCFineTuneModel, check_vocabulary
from speechbrain_ext.downstream.vocabulary import VocabularyError
from speechbrain_ext.interop.hf import ours_to_hf_config
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

REPO = Path(__file__).resolve().parents[1]
MICRO = dict(dropout=0.0, attention_dropout=0.0, dropout_input=0.0)


def test_logits_match_hf_wav2vec2_for_ctc(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = Wav2Vec2Config.micro(**MICRO)
    ours = CTCFineTuneModel(config, pretrained=save_backbone(Wav2Vec2Backbone(config), tmp_path / "b.ckpt"))
    with torch.no_grad():
        ours.lm_head.bias.normal_()
    hf_config = transformers.Wav2Vec2Config(**{**ours_to_hf_config(config), "vocab_size": 29,
                                                "final_dropout": 0.0, "architectures": None})
    hf = transformers.Wav2Vec2ForCTC(hf_config).eval()
    missing, unexpected = hf.load_state_dict(
        {**{f"wav2vec2.{k}": v for k, v in ours.backbone.state_dict().items()},
         **{f"lm_head.{k}": v for k, v in ours.lm_head.state_dict().items()}}, strict=False)
    assert not unexpected and not [k for k in missing if "masked_spec_embed" not in k]
    ours.eval()
    wav = torch.randn(2, 8000)
    log_probs, frames = ours(wav)
    with torch.no_grad():
        reference = hf(wav).logits.log_softmax(-1)
    assert log_probs.shape == reference.shape == (2, 24, 29)
    torch.testing.assert_close(log_probs, reference, atol=1e-4, rtol=1e-4)


def test_cnn_always_frozen_transformer_frozen_first_updates():
    torch.manual_seed(0)
    model = CTCFineTuneModel(Wav2Vec2Config.micro(**MICRO), freeze_encoder_updates=3, mask=(0.2, 2, 1))
    model.train()

    def grads():
        model.zero_grad(set_to_none=True)
        log_probs, frames = model(torch.randn(2, 8000))
        log_probs.sum().backward()
        has = lambda module: any(p.grad is not None for p in module.parameters())
        return (has(model.backbone.feature_extractor), has(model.backbone.encoder),
                has(model.backbone.feature_projection), has(model.lm_head))

    assert grads() == (False, False, False, True)  # update 0: only the output layer learns
    model.set_num_updates(3)
    assert grads() == (False, True, True, True)  # the transformer is released
    assert model.backbone.masked_spec_embed.grad is not None  # the training mask is applied


def test_vocabulary_size_errors():
    model = CTCFineTuneModel(Wav2Vec2Config.micro(), vocab_size=32)
    with pytest.raises(VocabularyError, match="32 output classes.*29"):
        check_vocabulary(model)
    ours = CTCFineTuneModel(Wav2Vec2Config.micro())
    with pytest.raises(VocabularyError, match="output layer has 32 classes but this model has 29"):
        ours.load_state_dict(model.state_dict())


def test_recipe_end_to_end_tiny(mini_root, tmp_path):
    """A few updates of the recipe on a handful of synthetic utterances:
    it trains, checkpoints, builds an LM, decodes greedy and with the LM."""
    finetune_recipe = load_recipe_script(REPO / "recipes" / "finetune" / "train.py",
                                         "finetune_recipe_train")
    config = Wav2Vec2Config.micro(extractor_mode="layer_norm")
    pretrained = save_backbone(Wav2Vec2Backbone(config), tmp_path / "backbone.ckpt")
    out = tmp_path / "run"
    micro_backbone = json.dumps({k: v for k, v in config.to_dict().items()
                                 if k in ("extractor_mode", "conv_layers", "dim", "num_layers", "num_heads", "ffn_dim",
                                          "pos_conv_kernel", "pos_conv_groups")})
    brain, results = finetune_recipe.main([
        "hparams/ll10h.yaml", "--overrides_file", "overrides/micro.yaml",
        f"--pretrained={pretrained}", f"--data_folder={mini_root / 'LibriSpeech'}",
        f"--librilight_folder={mini_root / 'librispeech_finetuning'}", f"--output_folder={out}",
        "--max_utterances=6", "--max_updates=3", "--freeze_encoder_updates=1", "--batch_seconds=30",
        "--lm_weights=[1.0]", "--word_scores=[0.0, 0.5]", "--beam_size=5", "--number_of_epochs=1",
        f"--backbone_config={micro_backbone}", "--device=cpu"])
    assert brain.optimizer_step == 3
    assert unwrap_updates(brain) == 3
    saved = json.loads((out / "wer.json").read_text())
    assert set(saved) >= {"dev-clean", "test-clean", "tuned"}
    for split in ("dev-clean", "test-clean"):
        assert set(saved[split]) == {"greedy", "beam_no_lm", "lm"}
        assert all(v >= 0 for v in saved[split]["greedy"].values())
        assert all(v >= 0 for v in saved[split]["beam_no_lm"].values())
    assert saved["seed"] == 1986 and saved["setting"] == "ll10h"
    assert saved["tuned"]["lm_weight"] == 1.0 and saved["tuned"]["word_score"] in (0.0, 0.5)
    assert (out / "lm_3gram.arpa").read_text().startswith("\\data\\")
    assert list((out / "save").glob("CKPT+*"))


def unwrap_updates(brain):
    from speechbrain_ext.training.distributed import unwrap

    return unwrap(brain.modules.model).num_updates


def test_best_checkpoint_breaks_wer_ties_by_cer():
    """Early in a short run every dev WER can be 100 %: the checkpoint kept
    and evaluated is then the one of lowest CER, not the first one."""
    from types import SimpleNamespace

    finetune_recipe = load_recipe_script(REPO / "recipes" / "finetune" / "train.py",
                                         "finetune_recipe_train")
    metas = [{"WER": 100.0, "CER": 100.0, "update": 66}, {"WER": 100.0, "CER": 71.0, "update": 132},
             {"WER": 100.0, "CER": 80.0, "update": 198}, {"unixtime": 0.0}]
    best = max((SimpleNamespace(meta=m) for m in metas), key=finetune_recipe.lowest_error)
    assert best.meta["update"] == 132
    metas.append({"WER": 98.0, "CER": 90.0, "update": 264})
    assert max((SimpleNamespace(meta=m) for m in metas), key=finetune_recipe.lowest_error).meta["update"] == 264


# ---- channel masking (fairseq mask_channel_prob / mask_channel_length) ------

def test_channel_mask_counts_follow_fairseq():
    """fairseq's base_10h / 100h values on a base-width model: 6 spans of 64
    of the 768 channels per utterance (0.5 * 768 / 64, overlaps allowed),
    each utterance its own; 0.25: 3 spans."""
    from speechbrain_ext.models.masking import compute_channel_mask

    generator = torch.Generator().manual_seed(0)
    mask = compute_channel_mask(400, 768, 0.5, 64, generator=generator)
    masked = mask.sum(dim=1).float()
    assert mask.shape == (400, 768) and bool((masked >= 64).all()) and bool((masked <= 6 * 64).all())
    # 6 uniform starts in range(704): a channel is masked with probability
    # 1 - P(no start among the 64 positions before it), ~43 % in the middle
    expected = 1 - (1 - 64 / 704) ** 6
    assert abs(masked.mean().item() / 768 - expected) < 0.05
    assert len({tuple(row.tolist()) for row in mask[:20]}) == 20  # each utterance its own
    quarter = compute_channel_mask(400, 768, 0.25, 64, generator=generator)
    runs = [((row[1:] & ~row[:-1]).sum() + row[0]).item() for row in quarter]
    assert max(runs) <= 3 and min(runs) >= 1  # 3 spans, some merged by overlaps
    assert abs(quarter.float().mean().item() - (1 - (1 - 64 / 704) ** 3)) < 0.03
    with pytest.raises(ValueError, match="longer than the 64 channels"):
        compute_channel_mask(2, 64, 0.5, 65)


def test_channel_masking_in_training_only_and_from_the_global_generator():
    torch.manual_seed(0)
    config = Wav2Vec2Config.micro(**MICRO)
    model = CTCFineTuneModel(config, mask=(0.1, 2, 1), mask_channel=[0.3, 8])
    assert model.mask_channel == (0.3, 8, 0)
    drawn = []
    model.backbone.register_forward_hook(lambda module, args, out: drawn.append(out.extra))
    wav = torch.randn(2, 8000)
    model.train()
    outputs = []
    for _ in range(2):  # the recipes reseed torch's generator: the same masks again
        torch.manual_seed(7)
        outputs.append(model(wav)[0])
    assert torch.equal(outputs[0], outputs[1])
    first, second = drawn[0]["channel_mask"], drawn[1]["channel_mask"]
    assert torch.equal(first, second) and first.shape == (2, 64) and first.any()
    model.eval()
    model(wav)
    assert drawn[-1] is None  # no mask in evaluation
    # off: prob 0 (the YAMLs' default) or None; the forward is the plain one
    for off in ([0.0, 64], None):
        plain = CTCFineTuneModel(config, mask=(0.1, 2, 1), mask_channel=off)
        assert plain.mask_channel is None
    with pytest.raises(ValueError, match="spans of 65 channels, but the backbone is 64 wide"):
        CTCFineTuneModel(config, mask_channel=[0.5, 65])


# ---- the recipe end to end: SEW-D, a pre-training save folder, vocabularies --

def run_finetune(mini_root, out, *extra, yaml="hparams/ll10h.yaml", overrides=("overrides/micro.yaml",)):
    finetune_recipe = load_recipe_script(REPO / "recipes" / "finetune" / "train.py",
                                         "finetune_recipe_train")
    return finetune_recipe.main([
        yaml, *[a for f in overrides for a in ("--overrides_file", f)],
        f"--data_folder={mini_root / 'LibriSpeech'}",
        f"--librilight_folder={mini_root / 'librispeech_finetuning'}", f"--output_folder={out}",
        "--max_utterances=6", "--lm_weights=[1.0]", "--word_scores=[0.0]", "--beam_size=5",
        "--device=cpu", *extra])


def test_sewd_micro_finetunes_and_decodes(mini_root, tmp_path):
    """A micro SEW-D backbone file fine-tunes through the recipe (its
    architecture read from the file) with time and channel masking, and
    decodes greedy and with the LM."""
    from speechbrain_ext.models.sew import SEWDBackbone, SEWDConfig

    torch.manual_seed(0)
    pretrained = save_backbone(SEWDBackbone(SEWDConfig.micro()), tmp_path / "sewd.ckpt")
    out = tmp_path / "run"
    brain, results = run_finetune(mini_root, out, f"--pretrained={pretrained}", "--max_updates=3",
                                  "--freeze_encoder_updates=1", "--batch_seconds=30",
                                  "--number_of_epochs=1", "--mask_channel=[0.2, 8]")
    model = unwrap(brain)
    assert type(model.backbone) is SEWDBackbone and model.backbone.config.squeeze_factor == 2
    assert model.mask_channel == (0.2, 8, 0) and brain.optimizer_step == 3
    saved = json.loads((out / "wer.json").read_text())
    for split in ("dev-clean", "test-clean"):
        assert {"greedy", "lm"} <= set(saved[split])
        assert all(v >= 0 for v in saved[split]["lm"].values())
    assert list((out / "save").glob("CKPT+*"))


def test_pretraining_save_folder_finetunes_with_the_paper000_override(mini_root, tmp_path):
    """The save folder of our pre-training recipe (seq_5s, started from a
    wav2vec2 checkpoint) fine-tunes with paper 000's override and no
    --backbone_config: the architecture, waveform normalisation included,
    is the checkpoint's (the override's random_init_architecture, a
    layer_norm CNN, is for random initialisations only)."""
    from speechbrain_ext import load_backbone

    pretrain = load_recipe_script(REPO / "recipes" / "pretrain" / "train.py", "pretrain_recipe_train")
    architecture = dict(conv_layers=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2, dim=32,
                        num_layers=2, num_heads=2, ffn_dim=64, pos_conv_kernel=16, pos_conv_groups=4)
    torch.manual_seed(0)
    start = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config(**architecture)), tmp_path / "w2v2.ckpt")
    yaml_model = "{" + ", ".join(f"{k}: {json.dumps([list(c) for c in v] if k == 'conv_layers' else v)}"
                                 for k, v in architecture.items()) + ", layerdrop: 0.0}"
    pretrain.main([str(REPO / "recipes" / "pretrain" / "hparams" / "seq_5s.yaml"), "--overrides_file",
                   "overrides/micro.yaml", f"--backbone_config={yaml_model}",
                   f"--output_folder={tmp_path / 'seq'}", "--max_updates=1", "--device=cpu",
                   f"--data_folder={mini_root / 'LibriSpeech'}", f"--init_from={start}"])
    save = tmp_path / "seq" / "save"
    pretrained = load_backbone(save)
    out = tmp_path / "ft"
    brain, results = run_finetune(
        mini_root, out, f"--pretrained={save}", "--max_updates=2", "--batch_size=3",
        "--grad_accumulation_factor=1", "--freeze_encoder_updates=1", "--number_of_epochs=2",
        overrides=("overrides/micro.yaml", "overrides/paper000_ll10h.yaml"))
    model = unwrap(brain)
    assert brain.optimizer_step == 2 and results["pretrained"] == str(save)
    for key in ("conv_layers", "extractor_mode", "conv_bias", "normalize_waveform", "dim", "num_layers"):
        assert getattr(model.backbone.config, key) == getattr(pretrained.config, key), key
    assert model.backbone.config.extractor_mode == "group_norm"  # not the override's layer_norm
    assert model.mask == (0.1, 10, 2) and brain.hparams.schedule == "exponential"
    assert (out / "wer.json").is_file()


def test_resumed_run_draws_the_masks_of_the_uninterrupted_one(mini_root, tmp_path):
    """The training masks come from torch's generator, reseeded per batch:
    a run stopped after epoch 1 and resumed trains epoch 2 on the same
    masks (same loss, to the bit) as a run that went straight through."""
    import re

    torch.manual_seed(0)
    pretrained = save_backbone(Wav2Vec2Backbone(Wav2Vec2Config.micro()), tmp_path / "b.ckpt")
    args = (f"--pretrained={pretrained}", "--max_updates=100", "--freeze_encoder_updates=1",
            "--batch_seconds=30", "--mask_channel=[0.2, 8]", "--mask=[0.2, 5, 1]",
            "--lm_decoding=False")

    def epoch_losses(out):
        log = (out / "train_log.txt").read_text()
        return [(int(e), float(l)) for e, l in re.findall(r"epoch: (\d+).*?train loss: ([0-9.e+-]+)", log)]

    straight_brain, _ = run_finetune(mini_root, tmp_path / "straight", *args, "--number_of_epochs=2")
    run_finetune(mini_root, tmp_path / "resumed", *args, "--number_of_epochs=1")
    resumed_brain, _ = run_finetune(mini_root, tmp_path / "resumed", *args, "--number_of_epochs=2")
    straight, resumed = epoch_losses(tmp_path / "straight"), epoch_losses(tmp_path / "resumed")
    assert [e for e, _ in straight] == [e for e, _ in resumed] == [1, 2]  # the second call: epoch 2 only
    assert straight == resumed  # as logged (rounded)
    assert straight_brain.train_loss == resumed_brain.train_loss  # epoch 2's mean loss, unrounded


def test_checkpoint_of_another_vocabulary_is_refused_before_training(mini_root, tmp_path):
    """A fairseq fine-tuned checkpoint whose dictionary is not the letter
    vocabulary stops the recipe while the model is built: nothing is
    prepared or trained."""
    from test_fairseq_finetuned import FAIRSEQ_LETTERS, omegaconf_checkpoint, small_model, write_dictionary

    path = omegaconf_checkpoint(tmp_path, small_model())
    write_dictionary(tmp_path, FAIRSEQ_LETTERS[:-1] + ["-"])
    out = tmp_path / "run"
    with pytest.raises(VocabularyError, match=r"ft\.pt.*has '-'.*lacks 'Z'"):
        run_finetune(mini_root, out, f"--pretrained={path}", "--max_updates=1")
    assert not (out / "prep").exists() and not (out / "save").exists()


def unwrap(brain):
    from speechbrain_ext.training.distributed import unwrap as unwrap_module

    return unwrap_module(brain.modules.model)


def test_fairseq_finetuned_checkpoint_finetunes_with_the_paper000_override(mini_root, tmp_path):
    """A fairseq *fine-tuned* .pt (w2v_encoder. layout, dict.ltr.txt beside
    it) continues fine-tuning through the recipe with paper 000's override
    and no --backbone_config: its architecture and CTC head are the file's."""
    from test_fairseq_finetuned import omegaconf_checkpoint, write_dictionary
    from test_fairseq_safe_load import SMALL, small_model

    path = omegaconf_checkpoint(tmp_path, small_model())
    write_dictionary(tmp_path)
    out = tmp_path / "ft_fairseq"
    brain, results = run_finetune(
        mini_root, out, f"--pretrained={path}", "--max_updates=2", "--batch_size=3",
        "--grad_accumulation_factor=1", "--freeze_encoder_updates=1", "--number_of_epochs=2",
        overrides=("overrides/micro.yaml", "overrides/paper000_ll10h.yaml"))
    model = unwrap(brain)
    assert brain.optimizer_step == 2 and results["pretrained"] == str(path)
    for key in ("dim", "num_layers", "num_heads", "ffn_dim", "extractor_mode"):
        assert getattr(model.backbone.config, key) == getattr(SMALL, key), key
    assert (out / "wer.json").is_file()
