"""fairseq wav2vec2 and HuBERT checkpoints: architecture and weights renamed
key by key to ours (HF's names); the pickle is read as data
(``safe_pickle``), never run.

HuBERT (``cfg.model._name: hubert``; fine-tuned: ``hubert_ctc``, its
``w2v_args`` a ``hubert``) has wav2vec2's network and key layout, without a
quantizer: it loads as our wav2vec2 backbone, its pre-training heads
(``final_proj``, ``label_embs_concat``) dropped; any other key it has, or
one it lacks, is a ``CheckpointError`` naming the file and the keys
(``speechbrain_ext.interop.hubert``).

Two layouts:

* pre-training (``wav2vec2``): the network's keys at the top of ``model``,
  its architecture in ``cfg.model`` (or the legacy ``args`` Namespace);
* CTC fine-tuned (``wav2vec_ctc``, e.g. the released
  ``wav2vec_small_100h.pt``, paper 002 Table 4's baselines): the network
  under ``w2v_encoder.w2v_model.``, the CTC output layer as
  ``w2v_encoder.proj``; ``cfg.model`` is the fine-tuning config, and the
  pre-training config it started from is nested in it as ``w2v_args`` (a
  whole config: ``model``, ``task``...; in legacy checkpoints
  ``args.w2v_args``, a flat Namespace). The architecture is read from
  there; the fine-tuning config's training-time settings (dropouts,
  ``layerdrop``, ``feature_grad_mult``) replace the pre-training ones, as
  fairseq's ``Wav2VecEncoder`` does.

``load_fairseq_checkpoint`` gives the backbone of either;
``load_fairseq_finetuned`` also the output layer (``FairseqCTCHead``) with
the symbol of each of its rows: fairseq's ``Dictionary`` (``<s>``,
``<pad>``, ``</s>``, ``<unk>``, then ``dict.ltr.txt``'s symbols in file
order, ``|`` the word separator; ``<s>`` is the CTC blank). The dictionary
is not in the checkpoint: it is read from ``dict.<labels>.txt`` beside the
checkpoint, or a path given.

Example
-------
>>> fairseq_config_to_ours({"encoder_embed_dim": 64, "encoder_layers": 2,
...                         "encoder_attention_heads": 4}).dim
64
"""
import argparse
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import torch

from speechbrain_ext.interop import hubert
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

# the fine-tuned (wav2vec_ctc) layout: the network and the CTC output layer
FINETUNED_PREFIX = "w2v_encoder.w2v_model."
HEAD_PREFIX = "w2v_encoder.proj."
# fairseq's Dictionary starts with these four (bos, pad, eos, unk); bos is
# the CTC blank (fairseq's CTC criterion and W2lDecoder use index 0) unless
# the dictionary has a "<ctc_blank>" symbol
FAIRSEQ_SPECIAL_SYMBOLS = ("<s>", "<pad>", "</s>", "<unk>")
FAIRSEQ_CTC_BLANK = "<ctc_blank>"
FAIRSEQ_WORD_SEPARATOR = "|"
# fine-tuning options of fairseq's Wav2Vec2AsrConfig that replace the
# pre-training config's (Wav2VecEncoder's arg_overrides), by our names
_FINETUNING_OVERRIDES = {"dropout": "dropout", "attention_dropout": "attention_dropout",
                         "activation_dropout": "activation_dropout", "dropout_input": "dropout_input",
                         "layerdrop": "encoder_layerdrop", "feature_grad_mult": "feature_grad_mult"}
# the fairseq models whose checkpoints have our wav2vec2's layout
_WAV2VEC2_NAMES = (None, "wav2vec2")
_HUBERT_NAMES = (hubert.FAIRSEQ_NAME,)

logger = logging.getLogger(__name__)


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


def fairseq_state_to_ours(state, config, heads=_FAIRSEQ_PRETRAINING_ONLY):
    """Rename a fairseq wav2vec2 (or HuBERT) state dict to ours, leaving
    out the keys that start with one of ``heads`` (the pre-training heads).
    fairseq has no ``post_extract_proj`` when the CNN width equals the model
    width; an identity projection is inserted then."""
    out = {}
    for key, value in state.items():
        if heads and key.startswith(tuple(heads)):
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


@dataclass
class FairseqCTCHead:
    """The output layer of a fairseq CTC fine-tuned checkpoint
    (``w2v_encoder.proj``): ``weight`` ``[classes, dim]``, ``bias``
    ``[classes]``, and ``symbols``, the dictionary symbol of each row
    (fairseq's four specials first), or None when no dictionary was found
    (``dictionary`` is then where it was looked for)."""

    weight: torch.Tensor
    bias: torch.Tensor
    symbols: Optional[List[str]]
    dictionary: Path

    @property
    def num_classes(self):
        return self.weight.shape[0]


@dataclass
class FairseqFinetuned:
    """What ``load_fairseq_finetuned`` reads: the backbone's ``config`` and
    ``state`` (our names) and the CTC ``head`` (None for a pre-training
    checkpoint, which has none)."""

    config: Wav2Vec2Config
    state: dict
    head: Optional[FairseqCTCHead]


def read_fairseq_dictionary(path):
    """The symbols of fairseq's ``Dictionary`` loaded from ``path`` (a
    ``dict.ltr.txt``: ``SYMBOL COUNT`` per line), in index order: the four
    specials (``<s>``, ``<pad>``, ``</s>``, ``<unk>``), then the file's.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "dict.ltr.txt"
    >>> _ = path.write_text("| 94802\\nE 51860\\n' 1000\\n")
    >>> read_fairseq_dictionary(path)
    ['<s>', '<pad>', '</s>', '<unk>', '|', 'E', "'"]
    """
    path = Path(path)
    symbols = list(FAIRSEQ_SPECIAL_SYMBOLS)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.rstrip()
        if not line:
            continue
        overwrite = line.endswith(" #fairseq:overwrite")
        if overwrite:
            line = line[: -len(" #fairseq:overwrite")]
        symbol, _, count = line.rpartition(" ")
        if not symbol or not count.lstrip("-").isdigit():
            raise CheckpointError(f"{path}, line {number}: expected 'SYMBOL COUNT', got {line!r}")
        if symbol in symbols and not overwrite:
            raise CheckpointError(f"{path}, line {number}: duplicate symbol {symbol!r}")
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols


def _read_plain(path):
    """The checkpoint at ``path`` as plain data (checked to be a fairseq one)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such fairseq checkpoint")
    try:
        ckpt = load_plain(path)
    except pickle.UnpicklingError as err:  # its message names the file (and any refused global)
        raise CheckpointError(str(err)) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: no 'model' entry (not a fairseq checkpoint)")
    if not isinstance(ckpt["model"], dict):
        raise CheckpointError(f"{path}: 'model' is a {type(ckpt['model']).__name__}, not a state dict")
    return ckpt


def _as_dict(value):
    return vars(value) if isinstance(value, argparse.Namespace) else value


def _model_and_task(ckpt, path):
    """``(model config, task config)`` dicts of the checkpoint's ``cfg``
    (interpolations resolved; a nested ``w2v_args`` config against itself)
    or of its legacy ``args`` (one flat Namespace: both are it)."""
    if ckpt.get("cfg") is not None:
        cfg = ckpt["cfg"]
        if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
            raise CheckpointError(f"{path}: 'cfg' has no 'model' section")
        # a pickled DictConfig keeps "${task.normalize}"-style references
        # unresolved; the nested pre-training config refers to its own keys
        nested = cfg["model"].pop("w2v_args", None)
        if isinstance(nested, dict):
            resolve_interpolations(nested)
        resolve_interpolations(cfg)
        if nested is not None:
            cfg["model"]["w2v_args"] = nested
        return dict(cfg["model"]), dict(_as_dict(cfg.get("task")) or {})
    if ckpt.get("args") is not None:
        args = _as_dict(ckpt["args"])
        if not isinstance(args, dict):
            raise CheckpointError(f"{path}: 'args' is a {type(ckpt['args']).__name__}, "
                                  "not an argparse.Namespace")
        return dict(args), dict(args)
    raise CheckpointError(f"{path}: neither 'cfg' nor 'args' (cannot tell the architecture)")


def _model_kind(model_cfg, where):
    """``"wav2vec2"`` or ``"hubert"``: the network of a fairseq pre-training
    ``cfg.model`` (or legacy ``args``); any other model is a ``CheckpointError``."""
    names = {key: model_cfg.get(key) for key in ("_name", "arch")}
    if any(v in _HUBERT_NAMES for v in names.values()) and all(
            v is None or v in _HUBERT_NAMES for v in names.values()):
        hubert.check_fairseq_hubert_config(model_cfg, where)
        return "hubert"
    for key, value in names.items():
        if value not in _WAV2VEC2_NAMES:
            raise CheckpointError(f"{where}: fairseq model {key}={value!r} is not a wav2vec2 or a HuBERT "
                                  "(only fairseq wav2vec2 / HuBERT checkpoints import; SEW / SEW-D through "
                                  "HF folders)")
    return "wav2vec2"


def _network_state(state, config, kind, path):
    """The backbone state (our names) of a fairseq network's ``state``; a
    HuBERT one is checked key by key (``hubert.check_backbone_keys``)."""
    if kind != "hubert":
        return fairseq_state_to_ours(state, config)
    ours = fairseq_state_to_ours(hubert.drop_fairseq_heads(state), config, heads=())
    hubert.check_backbone_keys(config, ours, path)
    return ours


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finetuned_config(model_cfg, task_cfg, path):
    """The backbone config of a fine-tuned checkpoint: the architecture of
    the nested pre-training config (``w2v_args``), the fine-tuning config's
    training-time settings, its task's ``normalize``. Returns ``(config,
    kind)``, kind ``"wav2vec2"`` or ``"hubert"`` (``_model_kind``)."""
    w2v_args = _as_dict(model_cfg.get("w2v_args"))
    if not isinstance(w2v_args, dict):
        raise CheckpointError(
            f"{path}: a fine-tuned checkpoint (w2v_encoder.* weights) without the pre-training "
            f"config it started from (cfg.model.w2v_args / args.w2v_args is "
            f"{type(w2v_args).__name__}): cannot tell the architecture")
    if isinstance(_as_dict(w2v_args.get("model")), dict):  # a whole config: model, task, ...
        pre_model = dict(_as_dict(w2v_args["model"]))
        pre_task = dict(_as_dict(w2v_args.get("task")) or {})
    else:  # a legacy flat Namespace
        pre_model = pre_task = w2v_args
    kind = _model_kind(pre_model, f"{path} (w2v_args)")
    merged = dict(pre_model)
    for ours, theirs in _FINETUNING_OVERRIDES.items():
        if _is_number(model_cfg.get(ours)):
            merged[theirs] = model_cfg[ours]
    config = fairseq_config_to_ours(merged)
    # fairseq asserts that fine-tuning normalises as pre-training did
    normalize = task_cfg.get("normalize")
    if not isinstance(normalize, bool):
        normalize = pre_task.get("normalize", False)
    config.normalize_waveform = bool(normalize)
    return config, kind


def _split_finetuned_state(state, path):
    """``(network state, head state)`` of the fine-tuned layout, prefixes
    removed; other keys (a seq2seq decoder...) are left out with a warning."""
    network = {k[len(FINETUNED_PREFIX):]: v for k, v in state.items() if k.startswith(FINETUNED_PREFIX)}
    head = {k[len(HEAD_PREFIX):]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    other = sorted(k for k in state if not k.startswith((FINETUNED_PREFIX, HEAD_PREFIX)))
    if other:
        logger.warning(f"{path}: left out {len(other)} weights outside the encoder and its CTC "
                       f"output layer: {other[:5]}{' ...' if len(other) > 5 else ''}")
    if not network:
        raise CheckpointError(f"{path}: no {FINETUNED_PREFIX}* weights")
    return network, head


def _read_head(head_state, task_cfg, path, dictionary):
    if set(head_state) != {"weight", "bias"}:
        raise CheckpointError(f"{path}: the CTC output layer {HEAD_PREFIX}* has "
                              f"{sorted(head_state)}, expected weight and bias")
    weight, bias = head_state["weight"], head_state["bias"]
    if dictionary is None:
        labels = task_cfg.get("labels") if isinstance(task_cfg.get("labels"), str) else "ltr"
        dictionary = path.parent / f"dict.{labels}.txt"
    dictionary = Path(dictionary)
    symbols = read_fairseq_dictionary(dictionary) if dictionary.is_file() else None
    if symbols is not None and len(symbols) != weight.shape[0]:
        raise CheckpointError(
            f"{path}: the CTC output layer has {weight.shape[0]} rows but the dictionary {dictionary} "
            f"gives {len(symbols)} symbols ({len(FAIRSEQ_SPECIAL_SYMBOLS)} specials + "
            f"{len(symbols) - len(FAIRSEQ_SPECIAL_SYMBOLS)}): not the dictionary it was fine-tuned with")
    return FairseqCTCHead(weight, bias, symbols, dictionary)


def load_fairseq_finetuned(path, dictionary=None):
    """Read a fairseq wav2vec2 or HuBERT ``.pt``, pre-training or CTC
    fine-tuned (module docstring). Returns a ``FairseqFinetuned``: the backbone's
    config and state (our names) and, for a fine-tuned checkpoint, its CTC
    output layer with the dictionary symbol of each row, read from
    ``dictionary`` (fairseq's ``dict.ltr.txt``; default:
    ``dict.<task.labels>.txt`` beside the checkpoint; a head without one
    has ``symbols`` None). Read as data, as ``load_fairseq_checkpoint``."""
    path = Path(path)
    ckpt = _read_plain(path)
    model_cfg, task_cfg = _model_and_task(ckpt, path)
    state = ckpt["model"]
    if any(k.startswith("w2v_encoder.") for k in state):
        config, kind = _finetuned_config(model_cfg, task_cfg, path)
        network, head_state = _split_finetuned_state(state, path)
        head = _read_head(head_state, task_cfg, path, dictionary) if head_state else None
        return FairseqFinetuned(config, _network_state(network, config, kind, path), head)
    kind = _model_kind(model_cfg, str(path))
    config = fairseq_config_to_ours(model_cfg)
    # waveform normalisation is a task option in fairseq (task.normalize)
    config.normalize_waveform = bool(task_cfg.get("normalize", False))
    return FairseqFinetuned(config, _network_state(state, config, kind, path), None)


def load_fairseq_checkpoint(path):
    """Read a fairseq wav2vec2 or HuBERT ``.pt`` (pre-training, or CTC
    fine-tuned: its encoder, the output layer left out). Returns ``(config,
    state dict)``; a HuBERT's config is a ``Wav2Vec2Config`` (its network).

    The file is read as data (``safe_pickle.load_plain``), never run: its
    ``cfg`` (an omegaconf ``DictConfig``, or a dict) comes back as nested
    dicts, its legacy ``args`` as an ``argparse.Namespace``; a file that
    names any other global (``os.system``...) is a ``CheckpointError``
    naming the file and the global. Neither fairseq nor omegaconf is needed.
    """
    loaded = load_fairseq_finetuned(path)
    return loaded.config, loaded.state
