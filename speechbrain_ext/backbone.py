"""One entry point to get a backbone: ``load_backbone(PATH)``.

PATH may be
- a backbone file written by ``save_backbone`` (``*.ckpt``: architecture,
  config and weights in one torch file),
- an HF model folder (``config.json`` + weights),
- a SpeechBrain checkpoint folder of our pre-training recipe
  (``CKPT+...`` holding ``backbone.ckpt``), or a recipe's ``save`` folder, in
  which case the most recent checkpoint is used.

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
from pathlib import Path

import torch

from .convert import CheckpointError, backbone_from_state, load_hf_folder
from .models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

FORMAT = "speechbrain_ext.backbone/1"
ARCHITECTURES = {"wav2vec2": (Wav2Vec2Backbone, Wav2Vec2Config)}
BACKBONE_FILE = "backbone.ckpt"


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
    name = ckpt["architecture"]
    if name not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    _, config_cls = ARCHITECTURES[name]
    return backbone_from_state(config_cls.from_dict(ckpt["config"]), ckpt["state_dict"])


def _latest_checkpoint_dir(folder):
    candidates = sorted(folder.glob("CKPT+*"), key=lambda p: p.stat().st_mtime)
    candidates = [c for c in candidates if (c / BACKBONE_FILE).is_file()]
    return candidates[-1] if candidates else None


ARCHITECTURE_KEYS = ("conv_layers", "extractor_mode", "conv_bias", "dim", "num_layers",
                     "num_heads", "ffn_dim", "pos_conv_kernel", "pos_conv_groups",
                     "layer_norm_first")


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
    config = config if isinstance(config, Wav2Vec2Config) else Wav2Vec2Config.from_dict(dict(config))
    theirs, ours = loaded.config.to_dict(), config.to_dict()
    differ = [f"{k}: checkpoint {theirs[k]!r} vs config {ours[k]!r}"
              for k in ARCHITECTURE_KEYS if theirs[k] != ours[k]]
    if differ:
        raise CheckpointError(f"{path} has another architecture than the YAML's backbone_config:\n  "
                              + "\n  ".join(differ))
    return backbone_from_state(config, loaded.state_dict())


def load_backbone(path):
    """Load any supported checkpoint (see module docstring) in eval mode."""
    path = Path(path)
    if path.is_file():
        model = _load_backbone_file(path)
    elif (path / "config.json").is_file():
        config, state = load_hf_folder(path)
        model = backbone_from_state(config, state)
    elif (path / BACKBONE_FILE).is_file():
        model = _load_backbone_file(path / BACKBONE_FILE)
    elif path.is_dir() and _latest_checkpoint_dir(path) is not None:
        model = _load_backbone_file(_latest_checkpoint_dir(path) / BACKBONE_FILE)
    elif not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    else:
        raise CheckpointError(
            f"{path}: not a backbone file, an HF folder (config.json), a checkpoint folder "
            f"({BACKBONE_FILE}) or a save folder with CKPT+* checkpoints")
    return model.eval()
