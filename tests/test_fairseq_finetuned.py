"""fairseq CTC fine-tuned wav2vec2 checkpoints (``w2v_encoder.`` layout,
the released models paper 002 Table 4 compares with): the encoder's
architecture from the nested pre-training config (``cfg.model.w2v_args`` /
``args.w2v_args``), its weights, and the CTC output layer mapped row by row
from fairseq's dictionary order to the letter vocabulary's; a dictionary
that differs is a clear error. The checkpoints are built here in fairseq's
layout (names, omegaconf stand-ins, legacy Namespaces) and read as data."""
import argparse
import sys

import pytest
import torch

from speechbrain_ext.downstream.finetune import CTCFineTuneModel, fairseq_head_rows
from speechbrain_ext.downstream.vocabulary import LetterVocabulary, VocabularyError
from speechbrain_ext.interop.__main__ import main as convert_main
from speechbrain_ext.interop.fairseq import (load_fairseq_checkpoint, load_fairseq_finetuned,
                                             read_fairseq_dictionary)
from speechbrain_ext.interop.loading import init_backbone, load_backbone
from speechbrain_ext.io.checkpoints import CheckpointError
from test_fairseq_safe_load import (OMEGACONF_MODULES, SMALL, fairseq_arch, fairseq_state, fake_modules,
                                    omegaconf_like, save, small_model)

# fairseq's LibriSpeech letter dictionary (examples/wav2vec: dict.ltr.txt), by frequency
FAIRSEQ_LETTERS = ["|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C",
                   "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
ROWS = 4 + len(FAIRSEQ_LETTERS)  # <s> <pad> </s> <unk> first

# fairseq's base_100h.yaml fine-tuning options (Wav2Vec2AsrConfig names)
FINETUNING = {"_name": "wav2vec_ctc", "w2v_path": "/models/wav2vec_small.pt", "apply_mask": True,
              "mask_prob": 0.65, "mask_channel_prob": 0.5, "mask_channel_length": 64,
              "layerdrop": 0.1, "activation_dropout": 0.1, "dropout": 0.0, "attention_dropout": 0.0,
              "dropout_input": 0.0, "final_dropout": 0.0, "feature_grad_mult": 0.0,
              "freeze_finetune_updates": 0, "normalize": "${task.normalize}", "data": "${task.data}"}


def write_dictionary(folder, symbols=FAIRSEQ_LETTERS, name="dict.ltr.txt"):
    path = folder / name
    path.write_text("".join(f"{s} {1000 - i}\n" for i, s in enumerate(symbols)))
    return path


def finetuned_state(model, rows=ROWS, seed=3):
    """fairseq's Wav2VecCtc state: the network (pre-training heads removed)
    under w2v_encoder.w2v_model., the output layer as w2v_encoder.proj."""
    state = {f"w2v_encoder.w2v_model.{k}": v for k, v in fairseq_state(model).items()
             if not k.startswith("quantizer.")}
    generator = torch.Generator().manual_seed(seed)
    state["w2v_encoder.proj.weight"] = torch.randn(rows, SMALL.dim, generator=generator)
    state["w2v_encoder.proj.bias"] = torch.randn(rows, generator=generator)
    return state


def pretraining_cfg(normalize=False, **model):
    """The pre-training config fairseq nests as cfg.model.w2v_args."""
    return {"_name": None, "common": {"seed": 1, "fp16": True},
            "task": {"_name": "audio_pretraining", "normalize": normalize, "data": "/data/pt"},
            "model": {**fairseq_arch(), "dropout": 0.1, "attention_dropout": 0.1, "dropout_input": 0.1,
                      "encoder_layerdrop": 0.05, **model}}


def finetuned_cfg(normalize=False, w2v_model=None):
    return {"_name": None, "common": {"seed": 1},
            "task": {"_name": "audio_finetuning", "normalize": normalize, "labels": "ltr",
                     "data": "/data/ft"},
            "model": {**FINETUNING, "w2v_args": pretraining_cfg(normalize, **(w2v_model or {}))}}


def omegaconf_checkpoint(tmp_path, model, name="ft.pt", **cfg):
    with fake_modules(OMEGACONF_MODULES):
        return save({"args": None, "cfg": omegaconf_like(finetuned_cfg(**cfg)), "model": finetuned_state(model),
                     "optimizer_history": [{"criterion_name": "CtcCriterion", "num_updates": 80000}]},
                    tmp_path / name)


def test_omegaconf_finetuned_checkpoint_imports(tmp_path):
    model = small_model()
    path = omegaconf_checkpoint(tmp_path, model)
    write_dictionary(tmp_path)
    assert not any(m.split(".")[0] in ("omegaconf", "fairseq") for m in sys.modules)
    loaded = load_fairseq_finetuned(path)
    # the architecture is the nested pre-training config's, the training-time
    # settings the fine-tuning config's (fairseq's Wav2VecEncoder overrides)
    expected = {**SMALL.to_dict(), "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.1,
                "dropout_input": 0.0, "layerdrop": 0.1, "feature_grad_mult": 0.0, "normalize_waveform": False}
    assert loaded.config.to_dict() == expected
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state[key], value), key
    head = loaded.head
    assert head.symbols == ["<s>", "<pad>", "</s>", "<unk>"] + FAIRSEQ_LETTERS
    assert head.weight.shape == (ROWS, SMALL.dim) and head.dictionary == tmp_path / "dict.ltr.txt"
    # the backbone alone, through every loader of pre-training checkpoints
    config, state = load_fairseq_checkpoint(path)
    assert config == loaded.config and "w2v_encoder.proj.weight" not in state
    assert torch.equal(init_backbone({"dropout": 0.0}, path).masked_spec_embed, model.masked_spec_embed)
    assert convert_main(["import-fairseq", str(path), str(tmp_path / "b.ckpt")]) == 0
    assert torch.equal(load_backbone(tmp_path / "b.ckpt").masked_spec_embed, model.masked_spec_embed)


def reference_logits(model, state, wav):
    """fairseq's Wav2VecCtc: the encoder's last state through w2v_encoder.proj."""
    with torch.no_grad():
        hidden = model.eval()(wav).last_hidden_state
    return hidden @ state["w2v_encoder.proj.weight"].T + state["w2v_encoder.proj.bias"]


def test_ctc_model_starts_from_the_finetuned_checkpoint(tmp_path):
    """``CTCFineTuneModel(pretrained=fine-tuned .pt)``: the encoder and the
    output layer, whose rows follow our vocabulary (blank <- <s>, space <-
    |), so that its logits are fairseq's, column for column, and greedy
    decoding reads the same text."""
    model = small_model()
    path = omegaconf_checkpoint(tmp_path, model)
    write_dictionary(tmp_path)
    ours = CTCFineTuneModel({"dropout": 0.0}, pretrained=path).eval()
    assert type(ours.backbone).__name__ == "Wav2Vec2Backbone" and ours.vocab_size == 29
    wav = torch.randn(2, 6000)
    theirs = reference_logits(model, finetuned_state(model), wav)
    with torch.no_grad():
        logits, frames = ours.logits(wav)
    vocabulary = LetterVocabulary()
    fairseq_symbols = ["<s>", "<pad>", "</s>", "<unk>"] + FAIRSEQ_LETTERS
    for index, symbol in enumerate(vocabulary.symbols):
        row = fairseq_symbols.index({"<blank>": "<s>", " ": "|"}.get(symbol, symbol))
        torch.testing.assert_close(logits[..., index], theirs[..., row], atol=1e-5, rtol=1e-5)
    # greedy CTC over the kept rows reads as fairseq's (specials never win here)
    kept = torch.tensor(fairseq_head_rows(fairseq_symbols, vocabulary))
    assert torch.equal(logits.argmax(-1), theirs[..., kept].argmax(-1))
    # a new output layer instead: no dictionary needed
    (tmp_path / "dict.ltr.txt").unlink()
    fresh = CTCFineTuneModel(None, pretrained=path, load_head=False)
    assert not torch.equal(fresh.lm_head.weight, ours.lm_head.weight)
    with pytest.raises(CheckpointError, match=r"needs fairseq's dictionary, not found at .*dict\.ltr\.txt"):
        CTCFineTuneModel(None, pretrained=path)
    # a dictionary given elsewhere
    other = write_dictionary(tmp_path, name="letters.txt")
    given = CTCFineTuneModel(None, pretrained=path, fairseq_dictionary=other)
    assert torch.equal(given.lm_head.weight, ours.lm_head.weight)


def test_legacy_args_finetuned_checkpoint_imports(tmp_path):
    """Older fine-tuned checkpoints: ``args`` a Namespace whose ``w2v_args``
    is the pre-training run's flat Namespace (task options among them)."""
    model = small_model()
    w2v_args = argparse.Namespace(**{**fairseq_arch(normalize=True), "arch": "wav2vec2"})
    args = argparse.Namespace(**{k: v for k, v in FINETUNING.items() if not str(v).startswith("$")},
                              arch="wav2vec_ctc", normalize=True, labels="ltr", w2v_args=w2v_args)
    path = save({"args": args, "model": finetuned_state(model)}, tmp_path / "legacy.pt", zipped=False)
    write_dictionary(tmp_path)
    loaded = load_fairseq_finetuned(path)
    assert loaded.config.normalize_waveform and loaded.config.layerdrop == 0.1
    assert loaded.config.conv_layers == SMALL.conv_layers and loaded.config.layer_norm_first
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state[key], value), key
    ours = CTCFineTuneModel(None, pretrained=path).eval()
    assert ours.backbone.config.normalize_waveform
    wav = torch.randn(1, 5000)
    with torch.no_grad():
        logits, _ = ours.logits(wav)
    reference = model.eval()
    reference.config.normalize_waveform = True
    theirs = reference_logits(reference, finetuned_state(model), wav)
    torch.testing.assert_close(logits[..., 0], theirs[..., 0], atol=1e-5, rtol=1e-5)  # blank <- <s>


def test_other_vocabulary_is_a_clear_error(tmp_path):
    model = small_model()
    path = omegaconf_checkpoint(tmp_path, model)
    # digits instead of Q and Z: same row count, other symbols
    write_dictionary(tmp_path, FAIRSEQ_LETTERS[:-2] + ["1", "2"])
    with pytest.raises(VocabularyError) as err:
        CTCFineTuneModel(None, pretrained=path)
    message = str(err.value)
    assert "ft.pt" in message and "dict.ltr.txt" in message
    assert "has '1', '2'" in message and "lacks 'Q', 'Z'" in message
    # a dictionary of another size than the output layer
    write_dictionary(tmp_path, FAIRSEQ_LETTERS[:-1])
    with pytest.raises(CheckpointError, match="32 rows but the dictionary .* gives 31 symbols"):
        load_fairseq_finetuned(path)
    # a word-piece dictionary: fairseq's word separator missing too
    write_dictionary(tmp_path, [f"_{c}" for c in FAIRSEQ_LETTERS])
    with pytest.raises(VocabularyError, match=r"lacks .*'\|' \(space\)"):
        CTCFineTuneModel(None, pretrained=path)


def test_fairseq_head_rows_with_a_ctc_blank_symbol():
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "<ctc_blank>", "|", "A", "B"]
    assert fairseq_head_rows(symbols, LetterVocabulary(["A", "B", " "])) == [4, 6, 7, 5]


def test_checkpoints_that_cannot_import(tmp_path):
    model = small_model()
    # another model nested (asappresearch/sew's SEW-D is a fairseq user model)
    path = omegaconf_checkpoint(tmp_path, model, name="sewd.pt",
                                w2v_model={"_name": "squeeze_wav2vec2_deberta"})
    with pytest.raises(CheckpointError, match="squeeze_wav2vec2_deberta.*not a wav2vec2"):
        load_fairseq_finetuned(path)
    # no nested pre-training config: the architecture is unknown
    cfg = finetuned_cfg()
    cfg["model"]["w2v_args"] = None
    path = save({"cfg": cfg, "model": finetuned_state(model)}, tmp_path / "noargs.pt")
    with pytest.raises(CheckpointError, match="noargs.pt.*w2v_args"):
        load_fairseq_checkpoint(path)
    # a malformed dictionary line
    (tmp_path / "bad.txt").write_text("| 10\nE\n")
    with pytest.raises(CheckpointError, match=r"bad\.txt, line 2"):
        read_fairseq_dictionary(tmp_path / "bad.txt")
