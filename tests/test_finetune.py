"""CTC fine-tuning model: parity with HF Wav2Vec2ForCTC, freezing schedule,
vocabulary checks, and a tiny end-to-end run of the recipe."""
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
        assert set(saved[split]) == {"greedy", "lm"}
        assert all(v >= 0 for v in saved[split]["greedy"].values())
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
