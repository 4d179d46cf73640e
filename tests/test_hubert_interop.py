"""HuBERT checkpoints as our wav2vec2 backbone: numerical parity with HF
transformers' ``HubertModel`` (random weights from a small ``HubertConfig``,
nothing downloaded) loaded from its HF folder and from a fairseq-layout
``.pt`` written from the same weights; missing / unknown keys and
unsupported variants are clear errors; paper 000's "HuBERT BASE" baseline
accepts a HuBERT checkpoint and refuses a SEW one."""
import re

import pytest
import torch

transformers = pytest.importorskip("transformers")

from speechbrain_ext.interop.fairseq import load_fairseq_finetuned  # noqa: E402
from speechbrain_ext.interop.loading import init_backbone, load_backbone  # noqa: E402
from speechbrain_ext.io.checkpoints import CheckpointError  # noqa: E402
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone  # noqa: E402
from test_fairseq_safe_load import fairseq_state as wav2vec2_fairseq_state  # noqa: E402
from test_wav2vec2_parity import padded_batch  # noqa: E402

SMALL = dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
             conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
FINAL_DIM, NUM_LABELS = 16, 10  # HuBERT's pre-training heads: dropped on import


def random_hubert(mode="base", seed=0):
    """A random HF ``HubertModel``: ``base`` (group-norm CNN, post-LN) or
    ``large`` (layer-norm CNN with biases, pre-LN), eval mode."""
    torch.manual_seed(seed)
    extra = {"feat_extract_norm": "group", "do_stable_layer_norm": False} if mode == "base" \
        else {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}
    model = transformers.HubertModel(transformers.HubertConfig(**SMALL, **extra)).eval()
    # norms, biases and pos-conv gains away from their initial values: a
    # swapped or ignored parameter shows
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "original0" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def max_differences(ours, hf):
    """Max abs difference per hidden state on the valid frames of
    ``padded_batch`` (HF given the attention mask, ours the lengths)."""
    wav, lengths = padded_batch()
    attention_mask = (torch.arange(wav.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        ref = hf(wav, attention_mask=attention_mask, output_hidden_states=True)
        out = ours.eval()(wav, wav_lens=lengths.float() / wav.shape[1])
    ref_valid = hf._get_feature_vector_attention_mask(ref.last_hidden_state.shape[1], attention_mask).bool()
    assert torch.equal(out.frame_mask, ref_valid)
    # transformers 5 lists a pre-LN stack's last layer before its final
    # LayerNorm; our last state is after it (= last_hidden_state)
    reference = list(ref.hidden_states[:-1]) + [ref.last_hidden_state]
    assert len(out.hidden_states) == len(reference) == SMALL["num_hidden_layers"] + 1
    return [(a - b)[out.frame_mask].abs().max().item() for a, b in zip(out.hidden_states, reference)]


def fairseq_hubert_state(hf):
    """``hf``'s weights by fairseq HuBERT's names, with its pre-training heads."""
    state = wav2vec2_fairseq_state(hf)
    del state["quantizer.vars"]  # a wav2vec2 head: HuBERT has no quantizer
    generator = torch.Generator().manual_seed(7)
    state["final_proj.weight"] = torch.randn(FINAL_DIM, SMALL["hidden_size"], generator=generator)
    state["final_proj.bias"] = torch.randn(FINAL_DIM, generator=generator)
    state["label_embs_concat"] = torch.randn(NUM_LABELS, FINAL_DIM, generator=generator)
    return state


def fairseq_hubert_cfg(**model):
    """fairseq's cfg of a HuBERT pre-training run (HubertConfig / task names)."""
    return {"model": {"_name": "hubert", "label_rate": 50.0, "extractor_mode": "default",
                      "encoder_layers": 3, "encoder_embed_dim": 48, "encoder_ffn_embed_dim": 96,
                      "encoder_attention_heads": 4, "activation_fn": "gelu", "layer_type": "transformer",
                      "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0,
                      "encoder_layerdrop": 0.05, "dropout_input": 0.1, "dropout_features": 0.1,
                      "final_dim": FINAL_DIM, "untie_final_proj": False, "layer_norm_first": False,
                      "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
                      "conv_bias": False, "logit_temp": 0.1, "target_glu": False, "feature_grad_mult": 0.1,
                      "mask_length": 10, "mask_prob": 0.8, "conv_pos": 16, "conv_pos_groups": 4,
                      "skip_masked": False, "skip_nomask": False, **model},
            "task": {"_name": "hubert_pretraining", "data": "/data/ls960", "labels": ["km"],
                     "label_rate": 50.0, "sample_rate": 16000, "normalize": False}}


@pytest.mark.parametrize("mode", ["base", "large"])
def test_hf_hubert_folder_gives_transformers_hidden_states(mode, tmp_path):
    hf = random_hubert(mode)
    hf.save_pretrained(tmp_path)
    ours = load_backbone(tmp_path)
    assert type(ours) is Wav2Vec2Backbone
    assert ours.config.layer_norm_first == (mode == "large")
    assert ours.config.extractor_mode == ("group_norm" if mode == "base" else "layer_norm")
    errors = max_differences(ours, hf)
    print(f"HF {mode}: max abs difference per hidden state {['%.1e' % e for e in errors]}")
    assert max(errors) < 1e-5, errors


def test_hf_hubert_for_ctc_folder_loads_its_backbone(tmp_path):
    hf = random_hubert(seed=1)
    ctc = transformers.HubertForCTC(transformers.HubertConfig(**SMALL, vocab_size=32))
    ctc.hubert.load_state_dict(hf.state_dict())
    ctc.save_pretrained(tmp_path)
    assert max(max_differences(load_backbone(tmp_path), hf)) < 1e-5


def test_fairseq_hubert_checkpoint_matches_transformers(tmp_path):
    hf = random_hubert(seed=2)
    torch.save({"model": fairseq_hubert_state(hf), "cfg": fairseq_hubert_cfg(), "args": None},
               tmp_path / "hubert.pt")
    ours = load_backbone(tmp_path / "hubert.pt")
    assert type(ours) is Wav2Vec2Backbone and not ours.config.normalize_waveform
    assert ours.config.dropout_input == 0.1 and ours.config.layerdrop == 0.05  # the cfg's
    assert torch.equal(ours.masked_spec_embed, hf.masked_spec_embed)
    errors = max_differences(ours, hf)
    print(f"fairseq: max abs difference per hidden state {['%.1e' % e for e in errors]}")
    assert max(errors) < 1e-5, errors
    # the recipes' entry point reads it alike (training mode, the YAML's dropouts)
    trained = init_backbone({"dropout": 0.0}, tmp_path / "hubert.pt")
    assert trained.training and trained.config.dropout == 0.0
    assert torch.equal(trained.encoder.layers[0].attention.q_proj.weight,
                       hf.encoder.layers[0].attention.q_proj.weight)


def test_fairseq_hubert_ctc_checkpoint_loads_encoder_and_head(tmp_path):
    """fairseq's hubert_ctc layout: the network under w2v_encoder.w2v_model.
    (label_embs_concat kept there, final_proj removed), its pre-training
    config nested as w2v_args."""
    hf = random_hubert(seed=3)
    state = {f"w2v_encoder.w2v_model.{k}": v for k, v in fairseq_hubert_state(hf).items()
             if not k.startswith("final_proj.")}
    state["w2v_encoder.proj.weight"], state["w2v_encoder.proj.bias"] = torch.randn(32, 48), torch.randn(32)
    cfg = {"model": {"_name": "hubert_ctc", "w2v_path": "/models/hubert_base_ls960.pt", "dropout": 0.0,
                     "layerdrop": 0.1, "w2v_args": fairseq_hubert_cfg()},
           "task": {"_name": "hubert_pretraining", "normalize": False, "labels": ["ltr"]}}
    torch.save({"model": state, "cfg": cfg}, tmp_path / "hubert_ctc.pt")
    loaded = load_fairseq_finetuned(tmp_path / "hubert_ctc.pt")
    assert loaded.head.num_classes == 32 and loaded.config.layerdrop == 0.1
    assert max(max_differences(load_backbone(tmp_path / "hubert_ctc.pt"), hf)) < 1e-5


def test_missing_or_unknown_keys_are_a_clear_error(tmp_path):
    hf = random_hubert(seed=4)
    state = fairseq_hubert_state(hf)
    missing = dict(state)
    del missing["encoder.layers.1.fc1.weight"]
    torch.save({"model": missing, "cfg": fairseq_hubert_cfg()}, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "missing.pt"))
                       + r".*\n  missing: encoder\.layers\.1\.feed_forward\.intermediate_dense\.weight$"):
        load_backbone(tmp_path / "missing.pt")
    unknown = {**state, "quantizer.vars": torch.zeros(1, 8, 4)}  # a wav2vec2 head, not HuBERT's
    torch.save({"model": unknown, "cfg": fairseq_hubert_cfg()}, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match=r"unknown\.pt.*\n  unknown: quantizer\.vars"):
        load_backbone(tmp_path / "unknown.pt")
    # a fairseq HuBERT our backbone cannot hold: named, not mis-loaded
    torch.save({"model": state, "cfg": fairseq_hubert_cfg(layer_type="conformer")}, tmp_path / "conformer.pt")
    with pytest.raises(CheckpointError, match="conformer.pt: fairseq HuBERT layer_type='conformer'"):
        load_backbone(tmp_path / "conformer.pt")
    # an HF folder likewise, naming its weights file
    hf.save_pretrained(tmp_path / "hf")
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "hf" / "model.safetensors"
    tensors = load_file(str(weights))
    del tensors["encoder.layer_norm.bias"]
    save_file(tensors, str(weights))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: .*\n  missing: encoder\.layer_norm\.bias$"):
        load_backbone(tmp_path / "hf")


def test_paper000_hubert_baseline_takes_a_hubert_and_refuses_a_sew(tmp_path):
    """The "HuBERT BASE" row fine-tunes the released HuBERT (a wav2vec2
    backbone, as its architecture check sees it); a SEW checkpoint is
    refused before anything runs."""
    from speechbrain_ext.models.registry import build_backbone, save_backbone
    from speechbrain_ext.reproduce.chain import ChainError, Options, plan_cell
    from speechbrain_ext.reproduce.checks import check_checkpoint
    from speechbrain_ext.reproduce.registry import find_cells

    cell = find_cells("paper000", "baselines", "HuBERT BASE", "dev-other")[0]
    assert cell.runnable and [s["step"] for s in cell.chain] == ["released", "finetune", "metric"]
    random_hubert().save_pretrained(tmp_path / "hubert")
    check_checkpoint(tmp_path / "hubert", cell, "micro")  # the kind only at micro scale
    with pytest.raises(ChainError, match="needs w2v2_base"):  # paper scale: dim 48 is not BASE's 768
        check_checkpoint(tmp_path / "hubert", cell, "paper")
    sew = save_backbone(build_backbone({"zoo": "sew_micro"}), tmp_path / "sew.ckpt")
    with pytest.raises(ChainError, match="is a sew backbone"):
        check_checkpoint(sew, cell, "micro")
    plan = plan_cell(cell, Options(scale="paper", output_root=str(tmp_path / "out"),
                                   checkpoint=str(tmp_path / "hubert")))
    assert [s.kind for s in plan] == ["finetune", "metric"]
    assert f"--pretrained={tmp_path / 'hubert'}" in plan[0].command()
