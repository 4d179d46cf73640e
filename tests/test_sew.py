"""SEW / SEW-D backbones: numerical parity with HF ``SEWModel`` /
``SEWDModel`` (import and export, padded batches), the log-bucketed relative
positions and the disentangled attention against independent formulas, the
backbone contract, MLP heads, and both pre-training objectives on SEW-D."""
import math

import pytest
import torch

from speechbrain_ext.interop.hf import export_hf_folder
from speechbrain_ext.interop.loading import init_backbone, load_backbone
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.disentangled_attention import (DisentangledSelfAttention,
                                                           log_bucket_position, relative_position_index)
from speechbrain_ext.models.registry import backbone_config, build_backbone, save_backbone
from speechbrain_ext.models.sew import SEWBackbone, SEWConfig, SEWDBackbone, SEWDConfig, wfe_c_layers
from speechbrain_ext.pretraining.heads import MLPHead

transformers = pytest.importorskip("transformers")

SAMPLES = 24000
LENGTHS = torch.tensor([SAMPLES, 15000])  # a padded batch


def hf_small_config(cls, **extra):
    conv = wfe_c_layers(8)
    return cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               conv_dim=[c for c, _, _ in conv], conv_kernel=[k for _, k, _ in conv],
               conv_stride=[s for _, _, s in conv], num_conv_pos_embedding_groups=4, **extra)


def randomise_norms(model):
    """LayerNorm / GroupNorm weights start at 1 and 0; move them so that a
    mis-mapped or ignored norm parameter shows in the outputs."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))


def hf_and_ours(hf, ours, wav):
    mask = (torch.arange(SAMPLES)[None] < LENGTHS[:, None]).long()
    with torch.no_grad():
        theirs = hf(wav.clone(), attention_mask=mask, output_hidden_states=True)
        mine = ours(wav, wav_lens=LENGTHS / SAMPLES)
    return theirs, mine


def assert_same_states(theirs, mine, atol=1e-5):
    squeezed = mine.extra["squeezed_hidden_states"]
    assert len(squeezed) == len(theirs.hidden_states)
    for i, (a, b) in enumerate(zip(theirs.hidden_states, squeezed)):
        assert a.shape == b.shape, i
        torch.testing.assert_close(b, a, atol=atol, rtol=1e-4, msg=f"hidden state {i}")
    torch.testing.assert_close(mine.last_hidden_state, theirs.last_hidden_state, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("kind", ["sew-d", "sew"])
def test_hf_folder_imports_with_identical_hidden_states(kind, tmp_path):
    """A random HF model saved with save_pretrained loads through load_backbone
    and gives the same hidden states on a padded batch (every layer at the
    squeezed rate, and the upsampled output)."""
    torch.manual_seed(0)
    if kind == "sew-d":
        # 8 buckets up to 32: the 37 squeezed frames reach the logarithmic range
        config = hf_small_config(transformers.SEWDConfig, num_conv_pos_embeddings=15,
                                 position_buckets=8, max_position_embeddings=32)
        hf = transformers.SEWDModel(config).eval()
    else:
        config = hf_small_config(transformers.SEWConfig, num_conv_pos_embeddings=16)
        hf = transformers.SEWModel(config).eval()
    randomise_norms(hf)
    hf.save_pretrained(tmp_path)
    ours = load_backbone(tmp_path)
    assert type(ours) is (SEWDBackbone if kind == "sew-d" else SEWBackbone)
    theirs, mine = hf_and_ours(hf, ours, torch.randn(2, SAMPLES))
    assert_same_states(theirs, mine)
    # the contract: L + 1 states, all at the CNN frame rate, real-frame mask
    frames = ours.frame_lengths(LENGTHS)
    assert len(mine.hidden_states) == ours.num_hidden_states == 3
    assert all(h.shape == (2, int(frames[0]), 32) for h in mine.hidden_states)
    assert mine.frame_mask.sum(dim=1).tolist() == frames.tolist()
    # hidden state 1 upsampled by repetition: frame 2t and 2t+1 are squeezed frame t
    squeezed = mine.extra["squeezed_hidden_states"][1]
    torch.testing.assert_close(mine.hidden_states[1][:, 0:2 * squeezed.shape[1]:2], squeezed)
    torch.testing.assert_close(mine.hidden_states[1][:, 1:2 * squeezed.shape[1]:2], squeezed)


@pytest.mark.parametrize("cls,config_cls,hf_name", [
    (SEWDBackbone, SEWDConfig, "SEWDModel"), (SEWBackbone, SEWConfig, "SEWModel")])
def test_export_loads_in_transformers_with_same_outputs(cls, config_cls, hf_name, tmp_path):
    torch.manual_seed(1)
    ours = cls(config_cls.micro()).eval()
    randomise_norms(ours)
    export_hf_folder(ours, tmp_path)
    hf, info = getattr(transformers, hf_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    theirs, mine = hf_and_ours(hf.eval(), ours, torch.randn(2, SAMPLES))
    assert_same_states(theirs, mine)
    # and back: the exported folder imports to the same weights and config
    back = load_backbone(tmp_path)
    assert back.config == ours.config
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in ours.state_dict().items())


def reference_bucket(d, buckets, max_position):
    """DeBERTa-v2's log bucket of distance d, written from its definition."""
    mid = buckets // 2
    if abs(d) <= mid:  # exact within +-mid (|d| = mid maps to itself)
        return d
    log_part = math.ceil(math.log(abs(d) / mid) / math.log((max_position - 1) / mid) * (mid - 1))
    return int(math.copysign(mid + log_part, d))


def test_log_buckets_follow_the_definition():
    distances = torch.arange(-600, 601)
    for buckets, max_position in ((256, 512), (8, 32), (16, 100)):
        got = log_bucket_position(distances, buckets, max_position).tolist()
        want = [reference_bucket(d, buckets, max_position) for d in distances.tolist()]
        assert got == want, (buckets, max_position)
    index = relative_position_index(40, buckets=8, max_position=32)
    assert index.shape == (40, 40) and int(index.min()) == 0 and int(index.max()) == 15
    assert torch.equal(index.diagonal(), torch.full((40,), 8))  # distance 0 -> row `buckets`


def test_disentangled_attention_matches_an_explicit_loop():
    """c2c + c2p + p2c scores over sqrt(3 d), softmax over valid keys, computed
    element by element."""
    torch.manual_seed(0)
    dim, heads, time = 8, 2, 7
    attn = DisentangledSelfAttention(dim, heads).eval()
    x, rel = torch.randn(1, time, dim), torch.randn(8, dim)  # 4 buckets -> 8 rows
    index = relative_position_index(time, buckets=4, max_position=8)
    key_mask = torch.tensor([[True] * 5 + [False] * 2])
    with torch.no_grad():
        out = attn(x, rel, index, key_mask)
        q, k, v = attn.query_proj(x[0]), attn.key_proj(x[0]), attn.value_proj(x[0])
        qr, kr = attn.query_proj(rel), attn.key_proj(rel)
    d = dim // heads
    expected = torch.zeros(time, dim)
    for h in range(heads):
        s = slice(h * d, (h + 1) * d)
        for i in range(time):
            scores = []
            for j in range(5):  # valid keys only
                r = int(index[i, j])
                scores.append((q[i, s] @ k[j, s] + q[i, s] @ kr[r, s] + k[j, s] @ qr[r, s])
                              / math.sqrt(3 * d))
            weights = torch.softmax(torch.stack(scores), dim=0)
            expected[i, s] = sum(w * v[j, s] for j, w in enumerate(weights))
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=1e-5)


def test_backbone_files_configs_and_architecture_checks(tmp_path):
    model = SEWDBackbone(SEWDConfig.micro()).eval()
    path = save_backbone(model, tmp_path / "sewd.ckpt")
    loaded = load_backbone(path)
    assert type(loaded) is SEWDBackbone and loaded.config == model.config
    wav = torch.randn(1, 8000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wav).last_hidden_state, model(wav).last_hidden_state)
    # init_backbone: same architecture with training-time dropouts is accepted ...
    yaml_config = {"architecture": "sewd", **SEWDConfig.micro(dropout=0.3).to_dict()}
    assert init_backbone(yaml_config, path).config.dropout == 0.3
    # ... another architecture or size is refused, naming what differs
    with pytest.raises(CheckpointError, match="'sewd' backbone, but .* 'wav2vec2'"):
        init_backbone({"architecture": "wav2vec2", "dim": 64}, path)
    with pytest.raises(CheckpointError, match="num_layers"):
        init_backbone({**yaml_config, "num_layers": 3}, path)
    with pytest.raises(ValueError, match="unknown architecture 'sewdd'"):
        backbone_config({"architecture": "sewdd"})
    with pytest.raises(ValueError, match="unknown SEWDConfig keys \\['dimension'\\]"):
        backbone_config({"architecture": "sewd", "dimension": 3})


def test_mlp_head_normalises_over_frames():
    torch.manual_seed(0)
    head = MLPHead(6, 3, hidden_dim=16).train()
    x = torch.randn(4, 5, 6)
    flat = x.reshape(20, 6)
    h = flat @ head.hidden.weight.T
    h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + head.norm.eps)
    h = torch.relu(h * head.norm.weight + head.norm.bias)
    expected = (h @ head.output.weight.T + head.output.bias).reshape(4, 5, 3)
    torch.testing.assert_close(head(x), expected, atol=1e-5, rtol=1e-5)


def test_both_objectives_train_a_sewd_backbone():
    from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    torch.manual_seed(0)
    config = {"zoo": "sewd_micro"}
    contrastive = Wav2Vec2ContrastiveModel(config, num_negatives=5, codevector_dim=16,
                                           final_dim=8, num_vars=8, mlp_hidden_dim=32)
    assert isinstance(contrastive.backbone, SEWDBackbone)
    assert isinstance(contrastive.project_q, MLPHead) and isinstance(contrastive.project_hid, MLPHead)
    wav = torch.randn(3, 16000)
    out = contrastive(wav)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and 0.3 < float(out["mask_rate"]) < 0.8
    grads = [p.grad for p in contrastive.backbone.encoder.encoder.rel_embeddings.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)

    nc = NonContrastiveModel(config)
    assert isinstance(nc.backbone, SEWDBackbone)
    out = nc(wav)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert nc.online.encoder.upsample.projection.weight.grad.abs().sum() > 0
    assert type(build_backbone({"zoo": "sew_micro"})) is SEWBackbone


@pytest.mark.parametrize("yaml_name", ["sewd_base_w2v2_5s.yaml", "sewd_base_nc_5s.yaml"])
def test_sewd_pretraining_recipes_run_at_micro_scale(yaml_name, tmp_path, mini_root):
    """Both SEW-D YAMLs run two updates of the pre-training recipe (micro
    override, 1 s split) and save a SEW-D backbone that load_backbone reads."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from data_prep.synthetic import generate

    generate(mini_root, size="mini", corpora=["librispeech"], log=lambda *a: None)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "pretrain"
    model = ("--backbone_config={conv_layers: [[16, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], "
             "[32, 3, 2], [32, 2, 2], [32, 2, 2]], dim: 32, num_layers: 2, num_heads: 2, "
             "ffn_dim: 64, pos_conv_kernel: 15, pos_conv_groups: 4, layerdrop: 0.0}")
    args = [sys.executable, str(recipe / "train.py"), str(recipe / "hparams" / yaml_name),
            "--overrides_file", "overrides/micro.yaml", model, "--split_length=1", f"--output_folder={tmp_path}", "--max_updates=2", "--device=cpu",
            "--log_interval=1", f"--data_folder={Path(mini_root) / 'LibriSpeech'}"]
    if "w2v2" in yaml_name:
        args.append("--mlp_hidden_dim=32")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=recipe.parents[1], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    backbone = load_backbone(tmp_path / "save")
    assert type(backbone) is SEWDBackbone
    assert (backbone.config.dim, backbone.config.num_layers, backbone.config.squeeze_factor) == (32, 2, 2)
