"""One entry point to get a backbone: ``load_backbone(PATH)``.

PATH may be
- a backbone file written by ``save_backbone`` (``*.ckpt``: architecture,
  config and weights in one torch file),
- an HF model folder (``config.json`` + weights): wav2vec2, SEW, SEW-D, or
  HuBERT (loaded as a wav2vec2 backbone: HuBERT's network is wav2vec2's),
- a fairseq wav2vec2 or HuBERT ``.pt`` (read as data, never run),
- a SpeechBrain checkpoint folder of our pre-training recipe
  (``CKPT+...`` holding ``backbone.ckpt``), or a recipe's ``save`` folder, in
  which case the newest complete checkpoint (``speechbrain_ext.io.checkpoints``)
  whose backbone loads is used.

The returned module, called on waveforms ``[batch, samples]`` (and optional
relative lengths ``[batch]``), returns a ``BackboneOutput`` whose
``hidden_states`` are the CNN projection and every layer's output.

Recipes that train a checkpoint further (fine-tuning, unfrozen downstream
tasks) call ``init_backbone(YAML_CONFIG, PATH)``: the architecture is the
checkpoint's (``apply_backbone_config``), the YAML's ``backbone_config``
changes only training-time settings. ``backbone_metadata(PATH)`` reads what
the pre-training run stored with the backbone (``hours_seen``, ``updates``).

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
>>> init_backbone({"dropout": 0.0, "layerdrop": 0.0}, path).config.dim  # the checkpoint's width
64
>>> init_backbone({"dim": 768}, path)
Traceback (most recent call last):
...
speechbrain_ext.io.checkpoints.CheckpointError: ...micro.ckpt has another architecture than the YAML's backbone_config:
  dim: checkpoint 64 vs config 768
"""
import logging
from dataclasses import fields
from pathlib import Path

from speechbrain_ext.interop.fairseq import load_fairseq_checkpoint
from speechbrain_ext.interop.hf import load_hf_folder
from speechbrain_ext.io import checkpoints
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import (ARCHITECTURE_KEYS, ARCHITECTURES, BACKBONE_FILE,
                                             architecture_of_config, backbone_from_state,
                                             read_backbone_file, read_backbone_metadata)
from speechbrain_ext.models.zoo import zoo_config

logger = logging.getLogger(__name__)


def _read_newest(save_folder, read=read_backbone_file):
    """``read(backbone.ckpt)`` of the newest complete checkpoint of
    ``save_folder`` whose ``backbone.ckpt`` it reads (by default: loads),
    warning about each complete one skipped. Incomplete folders (interrupted,
    or a save under way) are not candidates. None readable is a
    ``CheckpointError`` listing why."""
    complete = checkpoints.complete_checkpoints(save_folder)
    problems = []
    for folder in complete:
        file = folder / BACKBONE_FILE
        try:
            if not file.is_file():
                raise CheckpointError(f"{file}: missing")
            return read(file)
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


def _architecture_claims(config):
    """What a YAML ``backbone_config`` (a mapping, or a config object: all
    of its keys) says: ``(architecture, zoo, other keys)``."""
    if isinstance(config, dict):
        values = dict(config)
    elif type(config) in {c for _, c in ARCHITECTURES.values()}:
        values = {"architecture": architecture_of_config(config), **config.to_dict()}
    else:
        raise TypeError(f"backbone_config of unknown type {type(config).__name__}")
    return values.pop("architecture", None), values.pop("zoo", None), values


def apply_backbone_config(reference, config, source="the checkpoint", label="checkpoint"):
    """The config ``reference`` (of the backbone being built: a checkpoint's,
    or a random initialisation's) with the training-time settings of
    ``config``, the YAML's ``backbone_config``; returns a new config object.

    The architecture is ``reference``'s. ``config`` may repeat it
    (``architecture``, a ``zoo`` model, keys of ``ARCHITECTURE_KEYS``), but a
    value that disagrees, or a key that ``reference``'s architecture lacks,
    is a ``CheckpointError`` naming ``source`` and every such key (``label``
    names the reference in the list). Its other keys (dropouts, layerdrop,
    ``feature_grad_mult``, ...) replace ``reference``'s; the keys it omits
    keep ``reference``'s values. ``config`` None: ``reference`` as it is.

    Why an error and not "the checkpoint wins": a key the YAML (or the
    command line) sets is a statement about the model to train; one that
    the checkpoint contradicts is a mistake to report, not to override.

    >>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
    >>> cfg = apply_backbone_config(Wav2Vec2Config.micro(dropout=0.0), {"dropout": 0.1, "dim": 64})
    >>> cfg.dim, cfg.dropout, cfg.num_layers
    (64, 0.1, 2)
    >>> apply_backbone_config(Wav2Vec2Config.micro(), {"zoo": "sewd_base"})
    Traceback (most recent call last):
    ...
    speechbrain_ext.io.checkpoints.CheckpointError: the checkpoint holds a 'wav2vec2' backbone, but the YAML's backbone_config names zoo: sewd_base, a 'sewd' backbone
    """
    if config is None:
        return type(reference).from_dict(reference.to_dict())
    ours = architecture_of_config(reference)
    claimed, zoo_name, values = _architecture_claims(config)
    if claimed is not None and claimed != ours:
        raise CheckpointError(f"{source} holds a {ours!r} backbone, but the YAML's backbone_config "
                              f"is {claimed!r} (architecture: {claimed})")
    zoo_claims = {}
    if zoo_name is not None:
        try:
            zoo = zoo_config(zoo_name)
        except ValueError as err:
            raise CheckpointError(f"backbone_config: {err}") from err
        if architecture_of_config(zoo) != ours:
            raise CheckpointError(
                f"{source} holds a {ours!r} backbone, but the YAML's backbone_config names "
                f"zoo: {zoo_name}, a {architecture_of_config(zoo)!r} backbone")
        zoo_claims = {k: v for k, v in zoo.to_dict().items() if k in ARCHITECTURE_KEYS}
    known = {f.name for f in fields(reference)}
    foreign = sorted(set(values) - known)
    if foreign:
        fits = [name for name, (_, cls) in ARCHITECTURES.items()
                if name != ours and set(values) <= {f.name for f in fields(cls)}]
        raise CheckpointError(
            f"{source} holds a {ours!r} backbone, but the YAML's backbone_config sets "
            f"{', '.join(foreign)}, which a {ours!r} backbone does not have"
            + (f" (the keys of a {' or '.join(repr(f) for f in fits)} backbone)" if fits else ""))
    theirs = reference.to_dict()
    try:
        merged = type(reference).from_dict({**theirs, **values})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"backbone_config: {err}") from err
    built = merged.to_dict()  # the YAML's values normalised (conv_layers lists -> tuples)
    differ = [f"{k}: {label} {theirs[k]!r} vs config {built[k]!r}"
              for k in ARCHITECTURE_KEYS if k in values and built[k] != theirs[k]]
    differ += [f"{k}: {label} {theirs[k]!r} vs config {v!r} (zoo: {zoo_name})"
               for k, v in zoo_claims.items() if k not in values and v != theirs[k]]
    if differ:
        raise CheckpointError(f"{source} has another architecture than the YAML's backbone_config:\n  "
                              + "\n  ".join(differ))
    changed = {k: (theirs[k], built[k]) for k in values
               if k not in ARCHITECTURE_KEYS and built[k] != theirs[k]}
    if changed:
        logger.info(f"{source}: training-time settings of the YAML's backbone_config: "
                    + ", ".join(f"{k} {new!r} (was {old!r})" for k, (old, new) in changed.items()))
    return merged


def _from_state(config, state, path):
    """``backbone_from_state``, its ``CheckpointError`` naming ``path``."""
    try:
        return backbone_from_state(config, state)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err


def _read_checkpoint(path):
    """A backbone from anything ``init_backbone`` takes."""
    return load_backbone(path)


def init_backbone(config, path):
    """The backbone of the checkpoint at ``path`` (anything ``load_backbone``
    reads: our checkpoints, HF folders; or a fairseq ``.pt``): its
    architecture and weights, with the training-time settings (dropouts,
    layerdrop, ...) of ``config``, the YAML's ``backbone_config`` (a
    mapping or a config object; None keeps the checkpoint's own). An
    architecture key of ``config`` that disagrees with the checkpoint is a
    ``CheckpointError`` naming it, raised before training
    (``apply_backbone_config``). Returned in training mode."""
    path = Path(path)
    loaded = _read_checkpoint(path)
    if config is None:
        return loaded.train()
    merged = apply_backbone_config(loaded.config, config, source=str(path))
    return backbone_from_state(merged, loaded.state_dict())


def backbone_metadata(path):
    """What the pre-training run stored with the backbone at ``path``
    (``save_backbone``'s ``metadata``: ``BackboneSaver`` writes
    ``hours_seen`` and ``updates``), a dict: for a backbone file, a
    ``CKPT+*`` folder, or a save folder (its newest complete checkpoint whose
    ``backbone.ckpt`` reads, as ``load_backbone`` picks). ``{}`` when none is
    stored: backbone files written before there was any, HF folders, fairseq
    ``.pt``. Anything else is a ``CheckpointError``, as for ``load_backbone``.

    >>> import tempfile
    >>> from speechbrain_ext.models.registry import build_backbone, save_backbone
    >>> folder = Path(tempfile.mkdtemp()) / "CKPT+1"
    >>> _ = save_backbone(build_backbone({"zoo": "w2v2_micro"}), folder / BACKBONE_FILE,
    ...                   metadata={"hours_seen": 2.5, "updates": 40})
    >>> backbone_metadata(folder)["hours_seen"]
    2.5
    """
    path = Path(path)
    if path.is_file():
        return {} if path.suffix == ".pt" else read_backbone_metadata(path)
    if (path / "config.json").is_file():
        return {}
    if (path / BACKBONE_FILE).is_file():
        return read_backbone_metadata(path / BACKBONE_FILE)
    if path.is_dir() and any(p.is_dir() for p in path.glob(checkpoints.PREFIX + "*")):
        return _read_newest(path, read_backbone_metadata)
    raise CheckpointError(f"{path}: no such file or folder" if not path.exists() else
                          f"{path}: not a backbone file, an HF folder, a checkpoint folder or a "
                          f"save folder")


def load_backbone(path):
    """Load any supported checkpoint (see module docstring) in eval mode.

    ``path`` (str or Path): a backbone file, a fairseq ``.pt``, an HF
    folder, a checkpoint folder or a save folder. A save folder gives the
    newest complete checkpoint whose backbone loads, with a warning naming
    each damaged one skipped; no complete one, or none that loads, is a
    ``CheckpointError``. A ``CKPT+*`` folder given itself is loaded even
    without its ``COMPLETE`` marker (hand-made folders have none), with a
    warning: it may be an interrupted save. Unreadable files are
    ``CheckpointError`` naming them.
    """
    path = Path(path)
    if path.suffix == ".pt" and path.is_file():  # fairseq's; our backbone files are *.ckpt
        config, state = load_fairseq_checkpoint(path)
        model = _from_state(config, state, path)
    elif path.is_file():
        model = read_backbone_file(path)
    elif (path / "config.json").is_file():
        config, state = load_hf_folder(path)
        model = _from_state(config, state, path)
    elif (path / BACKBONE_FILE).is_file():
        if path.name.startswith(checkpoints.PREFIX) and not checkpoints.is_complete(path):
            logger.warning(f"{path} has no {checkpoints.MARKER} marker (an interrupted save, "
                           f"or a hand-made folder): loading it anyway")
        model = read_backbone_file(path / BACKBONE_FILE)
    elif path.is_dir() and any(p.is_dir() for p in path.glob(checkpoints.PREFIX + "*")):
        model = _read_newest(path)
    elif not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    else:
        raise CheckpointError(
            f"{path}: not a backbone file, an HF folder (config.json), a checkpoint folder "
            f"({BACKBONE_FILE}) or a save folder with CKPT+* checkpoints")
    return model.eval()
