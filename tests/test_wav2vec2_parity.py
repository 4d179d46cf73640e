"""Numerical parity of our wav2vec2 backbone with HF transformers'
Wav2Vec2Model (same weights -> same hidden states), and the HF / fairseq
checkpoint interchange."""
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from speechbrain_ext import load_backbone  # noqa: E402
from speechbrain_ext.interop.__main__ import main as convert_main
from speechbrain_ext.interop.fairseq import load_fairseq_checkpoint
from speechbrain_ext.interop.hf import export_hf_folder
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import save_backbone  # noqa: E402
from speechbrain_ext.models.registry import backbone_from_state

SMALL = dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
             conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def random_hf_model(mode, seed=0):
    torch.manual_seed(seed)
    extra = {"feat_extract_norm": "group", "do_stable_layer_norm": False} if mode == "group" \
        else {"feat_extract_norm": "layer", "do_stable_layer_norm": True}
    config = transformers.Wav2Vec2Config(**SMALL, **extra, conv_bias=(mode == "layer"))
    model = transformers.Wav2Vec2Model(config).eval()
    # Random (not default-initialised) norms and pos-conv gains, so that a
    # swapped or ignored parameter cannot go unnoticed.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "original0" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def padded_batch():
    torch.manual_seed(1)
    wav = torch.randn(3, 8000)
    lengths = torch.tensor([8000, 6400, 3300])
    for i, n in enumerate(lengths):
        wav[i, n:] = 0.0
    return wav, lengths


@pytest.mark.parametrize("mode", ["group", "layer"])
def test_hidden_states_match_hf(mode, tmp_path):
    hf = random_hf_model(mode)
    hf.save_pretrained(tmp_path)
    ours = load_backbone(tmp_path)
    assert ours.config.extractor_mode == ("group_norm" if mode == "group" else "layer_norm")
    assert ours.config.layer_norm_first == (mode == "layer")
    wav, lengths = padded_batch()
    attention_mask = (torch.arange(wav.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        ref = hf(wav, attention_mask=attention_mask, output_hidden_states=True)
        out = ours(wav, wav_lens=lengths.float() / wav.shape[1])
    assert len(out.hidden_states) == len(ref.hidden_states) == SMALL["num_hidden_layers"] + 1
    valid = out.frame_mask
    ref_valid = hf._get_feature_vector_attention_mask(ref.last_hidden_state.shape[1], attention_mask).bool()
    assert torch.equal(valid, ref_valid)
    # Our last state is the encoder output (after the final LayerNorm of a
    # pre-LN stack) = HF's last_hidden_state; transformers 5 lists the last
    # layer's output before that LayerNorm in hidden_states.
    reference = list(ref.hidden_states[:-1]) + [ref.last_hidden_state]
    if mode == "group":
        assert torch.equal(ref.hidden_states[-1], ref.last_hidden_state)
    for layer, (a, b) in enumerate(zip(out.hidden_states, reference)):
        err = (a - b)[valid].abs().max().item()
        assert err < 1e-4, f"layer {layer}: max abs difference {err}"
    # features after the CNN LayerNorm = HF's extract_features
    assert torch.allclose(out.features, ref.extract_features, atol=1e-5)


def test_export_round_trip_loads_in_transformers(tmp_path):
    hf = random_hf_model("group", seed=3)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_backbone(tmp_path / "hf")
    export_hf_folder(ours, tmp_path / "exported")
    reloaded = transformers.Wav2Vec2Model.from_pretrained(tmp_path / "exported").eval()
    wav, _ = padded_batch()
    with torch.no_grad():
        a = reloaded(wav, output_hidden_states=True).hidden_states
        b = ours(wav).hidden_states
    for x, y in zip(a, b):
        assert torch.allclose(x, y, atol=1e-5)
    # and back again through our own file format and the CLI
    save_backbone(ours, tmp_path / "ours.ckpt")
    assert convert_main(["export-hf", str(tmp_path / "ours.ckpt"), str(tmp_path / "again")]) == 0
    again = load_backbone(tmp_path / "again")
    for (k, v), (k2, v2) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_waveform_normalisation_matches_hf_feature_extractor(tmp_path):
    """``normalize_waveform`` (fairseq's task.normalize) equals HF's
    ``Wav2Vec2FeatureExtractor(do_normalize=True)`` followed by the model, on
    a padded batch of un-normalised waveforms, and travels with the export."""
    hf = random_hf_model("layer", seed=4)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_backbone(tmp_path / "hf")
    assert not ours.config.normalize_waveform  # no preprocessor_config.json
    ours.config.normalize_waveform = True
    export_hf_folder(ours, tmp_path / "exported")
    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(tmp_path / "exported")
    assert extractor.do_normalize
    wav, lengths = padded_batch()
    wav = 0.05 * wav + 0.3  # far from zero mean / unit variance
    for i, n in enumerate(lengths):
        wav[i, n:] = 0.0
    inputs = extractor([w[:n].numpy() for w, n in zip(wav, lengths)], sampling_rate=16000,
                       padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = hf(inputs.input_values, attention_mask=inputs.attention_mask).last_hidden_state
        out = ours(wav, wav_lens=lengths.float() / wav.shape[1])
    valid = out.frame_mask
    err = (out.hidden_states[-1] - ref)[valid].abs().max().item()
    assert err < 1e-4, err
    assert load_backbone(tmp_path / "exported").config.normalize_waveform
    # without the normalisation the same network gives other outputs
    ours.config.normalize_waveform = False
    with torch.no_grad():
        raw = ours(wav, wav_lens=lengths.float() / wav.shape[1]).hidden_states[-1]
    assert (raw - ref)[valid].abs().max().item() > 1e-2


def test_fairseq_checkpoint_import(tmp_path):
    """A checkpoint in fairseq's layout (names, weight_g/v, cfg) gives the
    same network as the HF model it was written from."""
    hf = random_hf_model("group", seed=5)
    sd = hf.state_dict()
    rename = {"feature_projection.layer_norm.": "layer_norm.",
              "feature_projection.projection.": "post_extract_proj.",
              "encoder.pos_conv_embed.conv.bias": "encoder.pos_conv.0.bias",
              "encoder.pos_conv_embed.conv.parametrizations.weight.original0": "encoder.pos_conv.0.weight_g",
              "encoder.pos_conv_embed.conv.parametrizations.weight.original1": "encoder.pos_conv.0.weight_v",
              ".attention.": ".self_attn.", ".feed_forward.intermediate_dense.": ".fc1.",
              ".feed_forward.output_dense.": ".fc2.", "masked_spec_embed": "mask_emb"}
    fairseq_state = {}
    for k, v in sd.items():
        new = k
        if new.startswith("feature_extractor.conv_layers."):
            new = new.replace(".conv.", ".0.").replace(".layer_norm.", ".2.")
        for a, b in rename.items():
            new = new.replace(a, b)
        new = new.replace(".layer_norm.", ".self_attn_layer_norm.") if ".layers." in new and ".final_" not in new else new
        fairseq_state[new] = v
    fairseq_state["quantizer.vars"] = torch.zeros(1, 640, 128)  # pre-training head: dropped
    cfg = {"model": {"conv_feature_layers": "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] * 2",
                     "encoder_embed_dim": 48, "encoder_layers": 3, "encoder_attention_heads": 4,
                     "encoder_ffn_embed_dim": 96, "conv_pos": 16, "conv_pos_groups": 4,
                     "extractor_mode": "default", "layer_norm_first": False}}
    torch.save({"model": fairseq_state, "cfg": cfg}, tmp_path / "w2v.pt")
    config, state = load_fairseq_checkpoint(tmp_path / "w2v.pt")
    assert not config.normalize_waveform
    torch.save({"model": fairseq_state, "cfg": {**cfg, "task": {"normalize": True}}}, tmp_path / "norm.pt")
    assert load_fairseq_checkpoint(tmp_path / "norm.pt")[0].normalize_waveform
    ours = backbone_from_state(config, state).eval()
    wav, _ = padded_batch()
    with torch.no_grad():
        ref = hf(wav, output_hidden_states=True).hidden_states
        out = ours(wav).hidden_states
    for a, b in zip(out, ref):
        assert torch.allclose(a, b, atol=1e-4)
    assert convert_main(["import-fairseq", str(tmp_path / "w2v.pt"), str(tmp_path / "w.ckpt")]) == 0
    assert torch.equal(load_backbone(tmp_path / "w.ckpt").masked_spec_embed, ours.masked_spec_embed)


def test_wrong_architecture_is_a_clear_error(tmp_path):
    hf = random_hf_model("group")
    hf.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["hidden_size"] = 64  # weights are 48 wide
    cfg["num_attention_heads"] = 4
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_backbone(tmp_path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_backbone(tmp_path / "missing")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_backbone(tmp_path / "junk.ckpt")
