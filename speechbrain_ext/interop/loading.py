"""One entry point to get a backbone: ``load_backbone(PATH)``.

PATH may be
- a backbone file written by ``save_backbone`` (``*.ckpt``: architecture,
  config and weights in one torch file),
- an HF model folder (``config.json`` + weights),
- a fairseq wav2vec2 ``.pt`` (read as data, never run),
- a SpeechBrain checkpoint folder of our pre-training recipe
  (``CKPT+...`` holding ``backbone.ckpt``), or a recipe's ``save`` folder, in
  which case the newest complete checkpoint (``speechbrain_ext.io.checkpoints``)
  whose backbone loads is used.

The returned module, called on waveforms ``[batch, samples]`` (and optional
relative lengths ``[batch]``), returns a ``BackboneOutput`` whose
``hidden_states`` are the CNN projection and every layer's output.

Example
-------
>>> import tempfile, torch
>>> from speechbrain_ext.models.registry import save_backbone
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
>>> model = Wav2Vec2Backbone(Wav2Vec2Config.micro())
>>> path = save_backbone(model, tempfile.mkdtemp() + "/micro.ckpt")
>>> loaded = load_backbone(path)
>>> torch.equal(loaded.masked_spec_embed, model.masked_spec_embed)
True
"""
import logging
from pathlib import Path

from speechbrain_ext.interop.fairseq import load_fairseq_checkpoint
from speechbrain_ext.interop.hf import load_hf_folder
from speechbrain_ext.io import checkpoints
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import (ARCHITECTURE_KEYS, BACKBONE_FILE, architecture_of_config,
                                             backbone_config, backbone_from_state, read_backbone_file)

logger = logging.getLogger(__name__)


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
            return read_backbone_file(file)
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


def init_backbone(config, path):
    """A backbone built from ``config`` (the YAML's, with its training-time
    dropouts) holding the weights of the checkpoint at ``path`` (anything
    ``load_backbone`` reads: our checkpoints, HF folders, or a fairseq
    ``.pt``). An architecture that differs from ``config`` is a
    ``CheckpointError`` listing every differing key, raised before training."""
    path = Path(path)
    if path.suffix == ".pt":
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
        model = read_backbone_file(path)
    elif (path / "config.json").is_file():
        config, state = load_hf_folder(path)
        model = backbone_from_state(config, state)
    elif (path / BACKBONE_FILE).is_file():
        if path.name.startswith(checkpoints.PREFIX) and not checkpoints.is_complete(path):
            logger.warning(f"{path} has no {checkpoints.MARKER} marker (an interrupted save, "
                           f"or a hand-made folder): loading it anyway")
        model = read_backbone_file(path / BACKBONE_FILE)
    elif path.is_dir() and any(p.is_dir() for p in path.glob(checkpoints.PREFIX + "*")):
        model = _load_newest_backbone(path)
    elif not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    else:
        raise CheckpointError(
            f"{path}: not a backbone file, an HF folder (config.json), a checkpoint folder "
            f"({BACKBONE_FILE}) or a save folder with CKPT+* checkpoints")
    return model.eval()
