"""Checkpoint interchange with HF transformers and fairseq.

Our backbones' state-dict names are HF ``Wav2Vec2Model``'s / ``SEWModel``'s /
``SEWDModel``'s, so importing an HF folder (chosen by ``config.json``'s
``model_type``: ``wav2vec2``, ``sew``, ``sew-d``) only translates
``config.json`` and strips a model prefix (``wav2vec2.`` / ``sew.`` /
``sew_d.`` of the ``For...`` heads). An HF ``HubertModel`` folder
(``model_type: hubert``, prefix ``hubert.``) loads as a wav2vec2 backbone:
HuBERT's network is wav2vec2's (``speechbrain_ext.interop.hubert``).
fairseq wav2vec2 / HuBERT checkpoints are renamed key by key, their
pickles read as data (``safe_pickle``), never run. transformers itself
is not needed here: folders are read and written with json + safetensors /
torch.

Command line::

    python -m speechbrain_ext.interop import-hf  HF_FOLDER   OUT.ckpt
    python -m speechbrain_ext.interop import-fairseq  MODEL.pt  OUT.ckpt
    python -m speechbrain_ext.interop export-hf  CKPT  HF_FOLDER

Example
-------
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
>>> cfg = Wav2Vec2Config.micro()
>>> hf_config_to_ours(ours_to_hf_config(cfg)) == cfg
True
"""
import json
import re
from pathlib import Path

import torch

from speechbrain_ext.interop.hubert import HF_MODEL_TYPE, check_backbone_keys, check_hf_hubert_config
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.sew import SEWConfig, SEWDConfig
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config

# The only activation our modules implement (exact GELU, as fairseq and HF;
# HF SEW-D names it "gelu_python").
_HF_ACTIVATION = "gelu"
_HF_GELU_NAMES = ("gelu", "gelu_python")


def hf_config_to_ours(hf):
    """HF ``Wav2Vec2Config`` dict -> ``Wav2Vec2Config``."""
    for key in ("hidden_act", "feat_extract_activation"):
        if hf.get(key, _HF_ACTIVATION) != _HF_ACTIVATION:
            raise CheckpointError(f"config.json: {key}={hf[key]!r} is not supported (only 'gelu')")
    norm = hf.get("feat_extract_norm", "group")
    if norm not in ("group", "layer"):
        raise CheckpointError(f"config.json: feat_extract_norm must be 'group' or 'layer', got {norm!r}")
    conv = list(zip(hf.get("conv_dim", [512] * 7), hf.get("conv_kernel", [10, 3, 3, 3, 3, 2, 2]),
                    hf.get("conv_stride", [5, 2, 2, 2, 2, 2, 2])))
    return Wav2Vec2Config(
        conv_layers=conv,
        extractor_mode="group_norm" if norm == "group" else "layer_norm",
        conv_bias=bool(hf.get("conv_bias", False)),
        dim=hf.get("hidden_size", 768),
        num_layers=hf.get("num_hidden_layers", 12),
        num_heads=hf.get("num_attention_heads", 12),
        ffn_dim=hf.get("intermediate_size", 3072),
        pos_conv_kernel=hf.get("num_conv_pos_embeddings", 128),
        pos_conv_groups=hf.get("num_conv_pos_embedding_groups", 16),
        layer_norm_first=bool(hf.get("do_stable_layer_norm", False)),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-5),
        dropout=hf.get("hidden_dropout", 0.1),
        attention_dropout=hf.get("attention_dropout", 0.1),
        activation_dropout=hf.get("activation_dropout", 0.0),
        dropout_input=hf.get("feat_proj_dropout", 0.0),
        layerdrop=hf.get("layerdrop", 0.1),
    )


def hf_hubert_config_to_ours(hf, config_file="config.json"):
    """HF ``HubertConfig`` dict -> ``Wav2Vec2Config``: HuBERT's network is
    wav2vec2's, its fields are ``Wav2Vec2Config``'s; what our backbone
    lacks (``feat_proj_layer_norm: false``, ``conv_pos_batch_norm``) is a
    ``CheckpointError`` naming ``config_file``.

    >>> hf_hubert_config_to_ours({"model_type": "hubert", "hidden_size": 64, "num_hidden_layers": 2,
    ...                           "num_attention_heads": 4, "intermediate_size": 128}).num_layers
    2
    """
    check_hf_hubert_config(hf, config_file)
    return hf_config_to_ours(hf)


def ours_to_hf_config(cfg):
    """``Wav2Vec2Config`` -> HF ``config.json`` dict (``Wav2Vec2Model``)."""
    channels, kernels, strides = (list(x) for x in zip(*cfg.conv_layers))
    return {
        "model_type": "wav2vec2", "architectures": ["Wav2Vec2Model"],
        "conv_dim": channels, "conv_kernel": kernels, "conv_stride": strides,
        "num_feat_extract_layers": len(channels),
        "feat_extract_norm": "group" if cfg.extractor_mode == "group_norm" else "layer",
        "feat_extract_activation": "gelu", "hidden_act": "gelu",
        "conv_bias": cfg.conv_bias, "hidden_size": cfg.dim,
        "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ffn_dim, "num_conv_pos_embeddings": cfg.pos_conv_kernel,
        "num_conv_pos_embedding_groups": cfg.pos_conv_groups,
        "do_stable_layer_norm": cfg.layer_norm_first, "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_dropout": cfg.dropout, "attention_dropout": cfg.attention_dropout,
        "activation_dropout": cfg.activation_dropout, "feat_proj_dropout": cfg.dropout_input,
        "layerdrop": cfg.layerdrop,
    }


def _check_gelu(hf, config_file="config.json"):
    for key in ("hidden_act", "feat_extract_activation"):
        if hf.get(key, _HF_ACTIVATION) not in _HF_GELU_NAMES:
            raise CheckpointError(f"{config_file}: {key}={hf[key]!r} is not supported (only 'gelu')")


def hf_sew_config_to_ours(hf, config_file="config.json"):
    """HF ``SEWConfig`` / ``SEWDConfig`` dict (by ``model_type``) -> ``SEWConfig`` /
    ``SEWDConfig``. SEW-D variants our lobe does not implement (no relative
    attention, separate position projections, other position terms, a
    convolution layer) are a ``CheckpointError``."""
    _check_gelu(hf, config_file)
    disentangled = hf.get("model_type") == "sew-d"
    norm = hf.get("feat_extract_norm", "group")
    if norm not in ("group", "layer"):
        raise CheckpointError(f"{config_file}: feat_extract_norm must be 'group' or 'layer', got {norm!r}")
    conv = list(zip(hf.get("conv_dim", [c for c, _, _ in SEWConfig().conv_layers]),
                    hf.get("conv_kernel", [k for _, k, _ in SEWConfig().conv_layers]),
                    hf.get("conv_stride", [s for _, _, s in SEWConfig().conv_layers])))
    eps = hf.get("layer_norm_eps", 1e-7 if disentangled else 1e-5)
    values = dict(
        conv_layers=conv, extractor_mode="group_norm" if norm == "group" else "layer_norm",
        conv_bias=bool(hf.get("conv_bias", False)), dim=hf.get("hidden_size", 768),
        num_layers=hf.get("num_hidden_layers", 12), num_heads=hf.get("num_attention_heads", 12),
        ffn_dim=hf.get("intermediate_size", 3072),
        pos_conv_kernel=hf.get("num_conv_pos_embeddings", 128),
        pos_conv_groups=hf.get("num_conv_pos_embedding_groups", 16),
        squeeze_factor=hf.get("squeeze_factor", 2), layer_norm_eps=eps,
        attention_dropout=hf.get("attention_dropout", 0.1),
        dropout_input=hf.get("feat_proj_dropout", 0.0), layerdrop=hf.get("layerdrop", 0.0))
    if not disentangled:
        # HF SEW uses layer_norm_eps for the feature LayerNorm too
        return SEWConfig(feature_layer_norm_eps=eps, dropout=hf.get("hidden_dropout", 0.1),
                         activation_dropout=hf.get("activation_dropout", 0.1), **values)
    expected = {"relative_attention": True, "share_att_key": True, "norm_rel_ebd": "layer_norm"}
    for key, value in expected.items():
        if hf.get(key, value) != value:
            raise CheckpointError(f"{config_file}: {key}={hf[key]!r} is not supported (expected {value!r})")
    if sorted(hf.get("pos_att_type", ["p2c", "c2p"])) != ["c2p", "p2c"]:
        raise CheckpointError(f"{config_file}: pos_att_type {hf['pos_att_type']!r} is not supported "
                              "(expected ['p2c', 'c2p'])")
    if hf.get("conv_kernel_size", 0) > 0:
        raise CheckpointError(f"{config_file}: conv_kernel_size > 0 (DeBERTa's conv layer) is not supported")
    max_relative = hf.get("max_relative_positions", -1)
    if max_relative is None or max_relative < 1:
        max_relative = hf.get("max_position_embeddings", 512)
    # HF SEW-D uses activation_dropout on the residual branches and the
    # relative embeddings (our `dropout`); its hidden_dropout is unused.
    return SEWDConfig(feature_layer_norm_eps=hf.get("feature_layer_norm_eps", 1e-5),
                      dropout=hf.get("activation_dropout", 0.1),
                      position_buckets=hf.get("position_buckets", 256),
                      max_relative_positions=max_relative, **values)


def ours_to_hf_sew_config(cfg):
    """``SEWConfig`` / ``SEWDConfig`` -> HF ``config.json`` dict (``SEWModel`` / ``SEWDModel``)."""
    channels, kernels, strides = (list(x) for x in zip(*cfg.conv_layers))
    out = {
        "conv_dim": channels, "conv_kernel": kernels, "conv_stride": strides,
        "num_feat_extract_layers": len(channels),
        "feat_extract_norm": "group" if cfg.extractor_mode == "group_norm" else "layer",
        "feat_extract_activation": "gelu", "conv_bias": cfg.conv_bias, "hidden_size": cfg.dim,
        "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ffn_dim, "num_conv_pos_embeddings": cfg.pos_conv_kernel,
        "num_conv_pos_embedding_groups": cfg.pos_conv_groups,
        "squeeze_factor": cfg.squeeze_factor, "layer_norm_eps": cfg.layer_norm_eps,
        "attention_dropout": cfg.attention_dropout, "feat_proj_dropout": cfg.dropout_input,
        "layerdrop": cfg.layerdrop,
    }
    if isinstance(cfg, SEWDConfig):
        out.update({
            "model_type": "sew-d", "architectures": ["SEWDModel"], "hidden_act": "gelu_python",
            "feature_layer_norm_eps": cfg.feature_layer_norm_eps,
            "hidden_dropout": cfg.dropout, "activation_dropout": cfg.dropout,
            "position_buckets": cfg.position_buckets,
            "max_position_embeddings": cfg.max_relative_positions,
            "max_relative_positions": cfg.max_relative_positions,
            "relative_attention": True, "share_att_key": True,
            "pos_att_type": ["p2c", "c2p"], "norm_rel_ebd": "layer_norm",
        })
        return out
    if cfg.feature_layer_norm_eps != cfg.layer_norm_eps:
        raise CheckpointError("HF SEW has one layer_norm_eps; this config has feature_layer_norm_eps "
                              f"{cfg.feature_layer_norm_eps} != layer_norm_eps {cfg.layer_norm_eps}")
    out.update({"model_type": "sew", "architectures": ["SEWModel"], "hidden_act": "gelu",
                "hidden_dropout": cfg.dropout, "activation_dropout": cfg.activation_dropout})
    return out


def _normalise_weight_norm_keys(state):
    """Old-style ``weight_g`` / ``weight_v`` -> parametrization names."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"pos_conv_embed\.conv\.weight_g$", "pos_conv_embed.conv.parametrizations.weight.original0", key)
        key = re.sub(r"pos_conv_embed\.conv\.weight_v$", "pos_conv_embed.conv.parametrizations.weight.original1", key)
        renamed[key] = value
    return renamed


def _weights_file(folder):
    """The weights file of an HF ``folder``: ``model.safetensors`` if there is
    one, else ``pytorch_model.bin`` (which may not exist either)."""
    safetensors_file = folder / "model.safetensors"
    return safetensors_file if safetensors_file.is_file() else folder / "pytorch_model.bin"


def _read_hf_weights(folder):
    path = _weights_file(folder)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    raise CheckpointError(f"{folder}: neither model.safetensors nor pytorch_model.bin found")


# the HF feature extractor's settings (waveform normalisation) live here
PREPROCESSOR_CONFIG = "preprocessor_config.json"

# HF model_type -> the prefix of the base model inside ``...For*`` heads
_HF_PREFIXES = {"wav2vec2": "wav2vec2.", "sew": "sew.", "sew-d": "sew_d.", HF_MODEL_TYPE: "hubert."}


def load_hf_folder(folder):
    """Read an HF ``Wav2Vec2Model`` / ``SEWModel`` / ``SEWDModel`` /
    ``HubertModel`` (or their ``ForPreTraining`` / ``ForCTC`` / ...) folder.
    Returns ``(config, backbone state dict)``; a HuBERT one is a
    ``Wav2Vec2Config``, its keys checked against it (a ``CheckpointError``
    naming the weights file and the keys)."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder}: no config.json (expected an HF model folder)")
    hf = json.loads(config_file.read_text())
    model_type = hf.get("model_type", "wav2vec2")
    if model_type not in _HF_PREFIXES:
        raise CheckpointError(f"{config_file}: model_type {model_type!r} is not one of {sorted(_HF_PREFIXES)}")
    state = _read_hf_weights(folder)
    prefix = _HF_PREFIXES[model_type]
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if model_type == "wav2vec2":
        config = hf_config_to_ours(hf)
    elif model_type == HF_MODEL_TYPE:
        config = hf_hubert_config_to_ours(hf, config_file)
    else:
        config = hf_sew_config_to_ours(hf, config_file)
    # HF keeps waveform normalisation in the feature extractor's config
    preprocessor_file = folder / PREPROCESSOR_CONFIG
    if preprocessor_file.is_file():
        config.normalize_waveform = bool(json.loads(preprocessor_file.read_text()).get("do_normalize", False))
    state = _normalise_weight_norm_keys(state)
    if model_type == HF_MODEL_TYPE:
        check_backbone_keys(config, state, _weights_file(folder))
    return config, state


def export_hf_folder(model, folder):
    """Write ``model`` as an HF ``Wav2Vec2Model`` / ``SEWModel`` / ``SEWDModel`` folder."""
    folder = Path(folder)
    if model.config.extractor_mode == "fbfe":  # HF has no filter-bank front end
        raise CheckpointError("an FBFE (filter-bank front end) backbone has no HF equivalent; "
                              "keep it as our backbone.ckpt")
    if isinstance(model.config, SEWConfig):
        hf_config = ours_to_hf_sew_config(model.config)
    else:
        hf_config = ours_to_hf_config(model.config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf_config, indent=2))
    (folder / PREPROCESSOR_CONFIG).write_text(json.dumps({
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "sampling_rate": 16000, "padding_value": 0.0, "padding_side": "right",
        "do_normalize": bool(model.config.normalize_waveform), "return_attention_mask": True,
    }, indent=2))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    try:
        from safetensors.torch import save_file
    except ImportError:  # safetensors comes with transformers; fall back to torch
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder

