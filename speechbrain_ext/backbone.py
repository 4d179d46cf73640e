"""One entry point to get a backbone: ``load_backbone(PATH)``.

PATH may be
- a backbone file written by ``save_backbone`` (``*.ckpt``: architecture,
  config and weights in one torch file),
- an HF model folder (``config.json`` + weights),
- a SpeechBrain checkpoint folder of our pre-training recipe
  (``CKPT+...`` holding ``backbone.ckpt``), or a recipe's ``save`` folder, in
  which case the newest complete checkpoint (``speechbrain_ext.checkpoints``)
  whose backbone loads is used.

The returned module, called on waveforms ``[batch, samples]`` (and optional
relative lengths ``[batch]``), returns a ``BackboneOutput`` whose
``hidden_states`` are the CNN projection and every layer's output.

Example
-------
>>> import tempfile, torch
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
>>> model = Wav2Vec2Backbone(Wav2Vec2Config.micro())
>>> path = save_backbone(model, tempfile.mkdtemp() + "/micro.ckpt")
>>> loaded = load_backbone(path)
>>> torch.equal(loaded.masked_spec_embed, model.masked_spec_embed)
True
"""
import logging
from pathlib import Path

import torch

from . import checkpoints
from .convert import CheckpointError, backbone_from_state, load_hf_folder
from .models.sew import SEWBackbone, SEWConfig, SEWDBackbone, SEWDConfig
from .models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

FORMAT = "speechbrain_ext.backbone/1"
ARCHITECTURES = {"wav2vec2": (Wav2Vec2Backbone, Wav2Vec2Config),
                 "sew": (SEWBackbone, SEWConfig),
                 "sewd": (SEWDBackbone, SEWDConfig)}
BACKBONE_FILE = "backbone.ckpt"

logger = logging.getLogger(__name__)


def backbone_config(config):
    """A config object from a YAML mapping (or a config object, returned as
    is). The mapping may name ``architecture`` (a key of ``ARCHITECTURES``,
    default ``wav2vec2``) or ``zoo`` (a name of ``speechbrain_ext.zoo``,
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
        from .zoo import zoo_config

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


def save_backbone(model, path):
    """Write ``model`` with its architecture and config to one file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "architecture": architecture_of(model),
                "config": model.config.to_dict(), "state_dict": model.state_dict()}, path)
    return path


def _load_backbone_file(path):
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign file
        raise CheckpointError(f"{path}: cannot be read as a backbone checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a backbone checkpoint (expected format {FORMAT!r})")
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


def _load_newest_backbone(save_folder):
    """The backbone of the newest complete checkpoint of ``save_folder``
    whose ``backbone.ckpt`` loads, warning about each complete one skipped.
    Incomplete folders (interrupted, or a save under way) are not candidates.
    No loadable one is a ``CheckpointError`` listing why."""
    complete = checkpoints.complete_checkpoints(save_folder)
    problems = []
    for folder in complete:
        file = folder / BACKBONE_FILE
        try:
            if not file.is_file():
                raise CheckpointError(f"{file}: missing")
            return _load_backbone_file(file)
        except CheckpointError as err:  # only read here: the folder is left as it is
            logger.warning(f"skipping damaged checkpoint {folder}: {err}")
            problems.append(str(err))
    if not complete:
        raise CheckpointError(
            f"{save_folder}: no complete checkpoint (a CKPT+* folder with a "
            f"{checkpoints.MARKER} marker; the others are interrupted or unfinished saves). "
            f"Pass a CKPT+* folder itself to load it anyway")
    raise CheckpointError(f"{save_folder}: none of its {len(complete)} complete checkpoints has a "
                          f"loadable {BACKBONE_FILE}:\n  " + "\n  ".join(problems))


# Config keys that change the network (the others are training-time settings:
# dropouts, layerdrop, gradient scaling). Keys an architecture lacks are skipped.
# normalize_waveform has no weights but changes what the weights expect
ARCHITECTURE_KEYS = ("conv_layers", "extractor_mode", "conv_bias", "normalize_waveform", "dim", "num_layers",
                     "num_heads", "ffn_dim", "pos_conv_kernel", "pos_conv_groups",
                     "layer_norm_first", "squeeze_factor", "position_buckets",
                     "max_relative_positions")


def init_backbone(config, path):
    """A backbone built from ``config`` (the YAML's, with its training-time
    dropouts) holding the weights of the checkpoint at ``path`` (anything
    ``load_backbone`` reads: our checkpoints, HF folders, or a fairseq
    ``.pt``). An architecture that differs from ``config`` is a
    ``CheckpointError`` listing every differing key, raised before training."""
    path = Path(path)
    if path.suffix == ".pt":
        from .convert import load_fairseq_checkpoint

        loaded_config, state = load_fairseq_checkpoint(path)
        loaded = backbone_from_state(loaded_config, state)
    else:
        loaded = load_backbone(path)
    config = backbone_config(dict(config) if isinstance(config, dict) else config)
    if type(loaded.config) is not type(config):
        raise CheckpointError(
            f"{path} holds a {architecture_of_config(loaded.config)!r} backbone, but the YAML's "
            f"backbone_config is {architecture_of_config(config)!r}")
    theirs, ours = loaded.config.to_dict(), config.to_dict()
    differ = [f"{k}: checkpoint {theirs[k]!r} vs config {ours[k]!r}"
              for k in ARCHITECTURE_KEYS if k in ours and theirs[k] != ours[k]]
    if differ:
        raise CheckpointError(f"{path} has another architecture than the YAML's backbone_config:\n  "
                              + "\n  ".join(differ))
    return backbone_from_state(config, loaded.state_dict())


def load_backbone(path):
    """Load any supported checkpoint (see module docstring) in eval mode.

    ``path`` (str or Path): a backbone file, an HF folder, a checkpoint
    folder or a save folder. A save folder gives the newest complete
    checkpoint whose backbone loads, with a warning naming each damaged one
    skipped; no complete one, or none that loads, is a ``CheckpointError``.
    A ``CKPT+*`` folder given itself is loaded even without its ``COMPLETE``
    marker (hand-made folders have none), with a warning: it may be an
    interrupted save. Unreadable files are ``CheckpointError`` naming them.
    """
    path = Path(path)
    if path.is_file():
        model = _load_backbone_file(path)
    elif (path / "config.json").is_file():
        config, state = load_hf_folder(path)
        model = backbone_from_state(config, state)
    elif (path / BACKBONE_FILE).is_file():
        if path.name.startswith(checkpoints.PREFIX) and not checkpoints.is_complete(path):
            logger.warning(f"{path} has no {checkpoints.MARKER} marker (an interrupted save, "
                           f"or a hand-made folder): loading it anyway")
        model = _load_backbone_file(path / BACKBONE_FILE)
    elif path.is_dir() and any(p.is_dir() for p in path.glob(checkpoints.PREFIX + "*")):
        model = _load_newest_backbone(path)
    elif not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    else:
        raise CheckpointError(
            f"{path}: not a backbone file, an HF folder (config.json), a checkpoint folder "
            f"({BACKBONE_FILE}) or a save folder with CKPT+* checkpoints")
    return model.eval()
