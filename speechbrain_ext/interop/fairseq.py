"""fairseq wav2vec2 checkpoints: architecture and weights renamed key by key
to ours (HF's names); the pickle is read as data (``safe_pickle``), never
run.

Example
-------
>>> fairseq_config_to_ours({"encoder_embed_dim": 64, "encoder_layers": 2,
...                         "encoder_attention_heads": 4}).dim
64
"""
import argparse
import pickle
import re
from pathlib import Path

import torch

from speechbrain_ext.interop.safe_pickle import load_plain, resolve_interpolations
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config

# fairseq wav2vec2 -> HF / our names.
_FAIRSEQ_RULES = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^mask_emb$", "masked_spec_embed"),
    (r"^encoder\.pos_conv\.0\.weight_g$", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"^encoder\.pos_conv\.0\.weight_v$", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
    (r"^encoder\.layer_norm\.", "encoder.layer_norm."),
]


_FAIRSEQ_PRETRAINING_ONLY = ("quantizer.", "project_q.", "final_proj.", "target_glu.", "project_inp.")


def fairseq_config_to_ours(model_cfg):
    """fairseq ``cfg['model']`` (or legacy ``args``) dict -> ``Wav2Vec2Config``."""
    conv = model_cfg.get("conv_feature_layers", "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2")
    if isinstance(conv, str):
        if not re.fullmatch(r"[\[\]\(\)\d\s,+*]+", conv):
            raise CheckpointError(f"fairseq conv_feature_layers {conv!r} is not a plain layer list")
        conv = eval(conv, {"__builtins__": {}})  # digits, brackets, + and * only (checked above)
    dim = model_cfg.get("encoder_embed_dim", 768)
    return Wav2Vec2Config(
        conv_layers=conv, extractor_mode="layer_norm" if model_cfg.get("extractor_mode") == "layer_norm" else "group_norm",
        conv_bias=bool(model_cfg.get("conv_bias", False)), dim=dim,
        num_layers=model_cfg.get("encoder_layers", 12),
        num_heads=model_cfg.get("encoder_attention_heads", 12),
        ffn_dim=model_cfg.get("encoder_ffn_embed_dim", 3072),
        pos_conv_kernel=model_cfg.get("conv_pos", 128),
        pos_conv_groups=model_cfg.get("conv_pos_groups", 16),
        layer_norm_first=bool(model_cfg.get("layer_norm_first", False)),
        dropout=model_cfg.get("dropout", 0.1),
        attention_dropout=model_cfg.get("attention_dropout", 0.1),
        activation_dropout=model_cfg.get("activation_dropout", 0.0),
        dropout_input=model_cfg.get("dropout_input", 0.1),
        layerdrop=model_cfg.get("encoder_layerdrop", 0.05),
        feature_grad_mult=model_cfg.get("feature_grad_mult", 0.1),
    )


def fairseq_state_to_ours(state, config):
    """Rename a fairseq wav2vec2 state dict to ours. fairseq has no
    ``post_extract_proj`` when the CNN width equals the model width; an
    identity projection is inserted then."""
    out = {}
    for key, value in state.items():
        if key.startswith(_FAIRSEQ_PRETRAINING_ONLY):
            continue
        new = key
        for pattern, repl in _FAIRSEQ_RULES:
            new = re.sub(pattern, repl, new)
        out[new] = value
    if "feature_projection.projection.weight" not in out:
        cnn_dim = config.conv_layers[-1][0]
        if cnn_dim != config.dim:
            raise CheckpointError("fairseq checkpoint lacks post_extract_proj although CNN and model widths differ")
        out["feature_projection.projection.weight"] = torch.eye(config.dim)
        out["feature_projection.projection.bias"] = torch.zeros(config.dim)
    return out


def load_fairseq_checkpoint(path):
    """Read a fairseq wav2vec2 ``.pt``. Returns ``(config, state dict)``.

    The file is read as data (``safe_pickle.load_plain``), never run: its
    ``cfg`` (an omegaconf ``DictConfig``, or a dict) comes back as nested
    dicts, its legacy ``args`` as an ``argparse.Namespace``; a file that
    names any other global (``os.system``...) is a ``CheckpointError``
    naming the file and the global. Neither fairseq nor omegaconf is needed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such fairseq checkpoint")
    try:
        ckpt = load_plain(path)
    except pickle.UnpicklingError as err:  # its message names the file (and any refused global)
        raise CheckpointError(str(err)) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: no 'model' entry (not a fairseq checkpoint)")
    if ckpt.get("cfg") is not None:
        if not isinstance(ckpt["cfg"], dict) or not isinstance(ckpt["cfg"].get("model"), dict):
            raise CheckpointError(f"{path}: 'cfg' has no 'model' section")
        # a pickled DictConfig keeps "${task.normalize}"-style references unresolved
        resolve_interpolations(ckpt["cfg"])
        model_cfg = dict(ckpt["cfg"]["model"])
    elif ckpt.get("args") is not None:
        args = ckpt["args"]
        model_cfg = vars(args) if isinstance(args, argparse.Namespace) else args
        if not isinstance(model_cfg, dict):
            raise CheckpointError(f"{path}: 'args' is a {type(args).__name__}, not an argparse.Namespace")
    else:
        raise CheckpointError(f"{path}: neither 'cfg' nor 'args' (cannot tell the architecture)")
    config = fairseq_config_to_ours(model_cfg)
    # waveform normalisation is a task option in fairseq (task.normalize)
    task_cfg = ckpt["cfg"].get("task") if ckpt.get("cfg") is not None else model_cfg
    config.normalize_waveform = bool((task_cfg or {}).get("normalize", False))
    return config, fairseq_state_to_ours(ckpt["model"], config)
