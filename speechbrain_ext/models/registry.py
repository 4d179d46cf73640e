"""The one registry of backbone architectures: build one from a config (or
a YAML mapping, zoo names included), save it with its architecture and
config in one file, and read that file back. Loading anything else (HF
folders, fairseq ``.pt``, save folders) is ``speechbrain_ext.interop.loading``.

Example
-------
>>> import tempfile, torch
>>> model = build_backbone({"zoo": "w2v2_micro"})
>>> path = save_backbone(model, tempfile.mkdtemp() + "/micro.ckpt")
>>> torch.equal(read_backbone_file(path).masked_spec_embed, model.masked_spec_embed)
True
>>> architecture_of(model)
'wav2vec2'
>>> path = save_backbone(model, path, metadata={"hours_seen": 1.5, "updates": 200})
>>> read_backbone_metadata(path)
{'hours_seen': 1.5, 'updates': 200}
"""
import logging
from pathlib import Path

import torch

from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.sew import SEWBackbone, SEWConfig, SEWDBackbone, SEWDConfig
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
from speechbrain_ext.models.zoo import zoo_config

FORMAT = "speechbrain_ext.backbone/1"  # the file format's name (kept when the module moved)
ARCHITECTURES = {"wav2vec2": (Wav2Vec2Backbone, Wav2Vec2Config),
                 "sew": (SEWBackbone, SEWConfig),
                 "sewd": (SEWDBackbone, SEWDConfig)}
BACKBONE_FILE = "backbone.ckpt"

logger = logging.getLogger(__name__)


def backbone_config(config):
    """A config object from a YAML mapping (or a config object, returned as
    is). The mapping may name ``architecture`` (a key of ``ARCHITECTURES``,
    default ``wav2vec2``) or ``zoo`` (a name of ``speechbrain_ext.models.zoo``,
    e.g. ``sewd_base``); its other keys override the defaults.

    >>> backbone_config({"zoo": "sewd_tiny", "layerdrop": 0.0}).dim
    384
    >>> type(backbone_config({"architecture": "sew", "dim": 64})).__name__
    'SEWConfig'
    """
    if not isinstance(config, dict):
        if type(config) not in {c for _, c in ARCHITECTURES.values()}:
            raise TypeError(f"backbone config of unknown type {type(config).__name__}")
        return config
    values = dict(config)
    zoo_name = values.pop("zoo", None)
    architecture = values.pop("architecture", None)
    if zoo_name is not None:
        base = zoo_config(zoo_name)
        zoo_arch = architecture_of_config(base)
        if architecture is not None and architecture != zoo_arch:
            raise ValueError(f"backbone_config: zoo model {zoo_name!r} is a {zoo_arch!r} backbone, "
                             f"but architecture is {architecture!r}")
        return type(base).from_dict({**base.to_dict(), **values})
    architecture = architecture or "wav2vec2"
    if architecture not in ARCHITECTURES:
        raise ValueError(f"backbone_config: unknown architecture {architecture!r}; "
                         f"expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture][1].from_dict(values)


def build_backbone(config):
    """A freshly initialised backbone for ``config`` (see ``backbone_config``)."""
    config = backbone_config(config)
    return ARCHITECTURES[architecture_of_config(config)][0](config)


def architecture_of_config(config):
    for name, (_, config_cls) in ARCHITECTURES.items():
        if type(config) is config_cls:
            return name
    raise TypeError(f"{type(config).__name__} is not a known backbone config class")


def architecture_of(model):
    for name, (cls, _) in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"{type(model).__name__} is not a known backbone class")


# the types a metadata value may have: what torch.load(weights_only=True) reads back
METADATA_TYPES = (bool, int, float, str, type(None))


def save_backbone(model, path, metadata=None):
    """Write ``model`` with its architecture and config to one file.

    ``metadata`` (optional): a ``{str: bool / int / float / str / None}``
    mapping stored in the same file, e.g. what the pre-training run had
    done when it wrote it (``BackboneSaver``: ``hours_seen``, ``updates``);
    ``read_backbone_metadata`` reads it back. Files written without it (or
    before it existed) load as before."""
    metadata = dict(metadata or {})
    wrong = {k: type(v).__name__ for k, v in metadata.items()
             if not isinstance(k, str) or not isinstance(v, METADATA_TYPES)}
    if wrong:
        raise TypeError(f"save_backbone: metadata must map names to bool / int / float / str / None, "
                        f"got {wrong}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "architecture": architecture_of(model),
                "config": model.config.to_dict(), "state_dict": model.state_dict(),
                "metadata": metadata}, path)
    return path


def _read_file(path, mmap=False):
    """The mapping ``save_backbone`` wrote to ``path`` (``CheckpointError``
    naming it if it is not one); ``mmap`` maps the tensors instead of
    reading them (for the metadata alone)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # corrupt or foreign file
        raise CheckpointError(f"{path}: cannot be read as a backbone checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a backbone checkpoint (expected format {FORMAT!r})")
    return ckpt


def read_backbone_file(path):
    """The backbone saved by ``save_backbone`` at ``path`` (``CheckpointError`` naming it if not)."""
    ckpt = _read_file(path)
    name = ckpt.get("architecture")
    if name not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    _, config_cls = ARCHITECTURES[name]
    try:
        return backbone_from_state(config_cls.from_dict(ckpt["config"]), ckpt["state_dict"])
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
    except (KeyError, TypeError, ValueError) as err:  # a mangled config or state
        raise CheckpointError(f"{path}: damaged backbone checkpoint ({type(err).__name__}: {err})") from err


def read_backbone_metadata(path):
    """The ``metadata`` mapping ``save_backbone`` stored in the backbone file
    ``path`` (a new dict); ``{}`` for a file written without any (or before
    backbone files had it). The weights are memory-mapped, not read. Not a
    backbone file: a ``CheckpointError`` naming it."""
    metadata = _read_file(path, mmap=True).get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: damaged backbone checkpoint (metadata is a "
                              f"{type(metadata).__name__}, not a mapping)")
    return dict(metadata)


# Config keys that change the network (the others are training-time settings:
# dropouts, layerdrop, gradient scaling). Keys an architecture lacks are skipped.
# normalize_waveform has no weights but changes what the weights expect
ARCHITECTURE_KEYS = ("conv_layers", "extractor_mode", "conv_bias", "normalize_waveform", "dim", "num_layers",
                     "num_heads", "ffn_dim", "pos_conv_kernel", "pos_conv_groups",
                     "layer_norm_first", "squeeze_factor", "position_buckets",
                     "max_relative_positions")


def state_mismatch(own, state):
    """How ``state`` differs from a backbone's own state dict ``own``:
    ``(wrong shapes [(key, checkpoint shape, own shape)] in ``state``'s order,
    missing keys, unexpected keys)``, both sorted; ``masked_spec_embed`` may be
    absent (HF omits it when masking is off).

    >>> own = {"a": torch.zeros(2), "b": torch.zeros(3), "masked_spec_embed": torch.zeros(4)}
    >>> state_mismatch(own, {"a": torch.zeros(5), "c": torch.zeros(1)})
    ([('a', (5,), (2,))], ['b'], ['c'])
    """
    wrong = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
             if k in own and tuple(own[k].shape) != tuple(v.shape)]
    missing = sorted(k for k in set(own) - set(state) if k != "masked_spec_embed")
    return wrong, missing, sorted(set(state) - set(own))


def backbone_from_state(config, state, strict=True):
    """Build a backbone and load ``state``; a shape or key mismatch is a
    ``CheckpointError`` that names the offending keys."""
    model = build_backbone(config)
    own = model.state_dict()
    if "masked_spec_embed" not in state:  # HF omits it when masking is off
        state = {**state, "masked_spec_embed": own["masked_spec_embed"]}
    wrong, missing, unexpected = state_mismatch(own, state)
    wrong_shape = [f"{k}: checkpoint {theirs} vs model {ours}" for k, theirs, ours in wrong]
    if wrong_shape or (strict and (missing or unexpected)):
        raise CheckpointError(
            "checkpoint does not match the architecture:"
            + "".join(f"\n  shape {w}" for w in wrong_shape)
            + "".join(f"\n  missing {k}" for k in missing[:20])
            + "".join(f"\n  unexpected {k}" for k in unexpected[:20]))
    model.load_state_dict(state, strict=strict)
    return model


def count_parameters(config):
    """Parameters of the backbone for ``config``, counted as paper 002 (and
    fairseq) count them: without quantizer and pre-training heads, and without
    the CNN -> transformer projection where the CNN width equals the model
    width (fairseq creates ``post_extract_proj`` only when they differ; our
    wav2vec2 backbone, like HF's, always has one). Built on the meta device:
    no memory, no initialisation cost."""
    with torch.device("meta"):
        model = build_backbone(config)
    total = sum(p.numel() for p in model.parameters())
    if isinstance(config, Wav2Vec2Config) and model.feature_extractor.output_dim == config.dim:
        total -= sum(p.numel() for p in model.feature_projection.projection.parameters())
    return total

