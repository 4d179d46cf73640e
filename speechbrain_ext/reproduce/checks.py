"""Checks before a chain runs: the checkpoint's architecture against the
row's, and (``check_plan``, for ``--dry-run`` tests) that every step's YAML
loads with its overrides and its model builds, on the meta device (no
memory, no weights: a SEW-D-base builds in a second).

Example
-------
>>> from speechbrain_ext.reproduce.registry import find_cells
>>> expected_architecture(find_cells("paper002", "table6", "8", "dev-other")[0])
('sewd', 384, 12)
"""
import importlib.util
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

from speechbrain_ext.reproduce.chain import REPO_ROOT, ChainError


def expected_architecture(cell):
    """``(architecture, dim, layers)`` of the row's zoo model, or None."""
    if not cell.architecture:
        return None
    from speechbrain_ext.models.registry import architecture_of_config
    from speechbrain_ext.models.zoo import zoo_config

    config = zoo_config(cell.architecture)
    return architecture_of_config(config), config.dim, config.num_layers


def checkpoint_architecture(path):
    """``(architecture, dim, layers)`` of any checkpoint ``init_backbone`` reads."""
    from speechbrain_ext.interop.loading import init_backbone
    from speechbrain_ext.models.registry import architecture_of

    backbone = init_backbone(None, Path(path))
    return architecture_of(backbone), backbone.config.dim, backbone.config.num_layers


def check_checkpoint(path, cell, scale):
    """A ``ChainError`` if ``path`` is not of the row's architecture (at
    micro scale only the kind: wav2vec2 / SEW / SEW-D; at paper scale also
    width and depth)."""
    want = expected_architecture(cell)
    if want is None:
        return
    if not Path(path).exists():
        raise ChainError(f"--checkpoint {path}: no such file or folder")
    have = checkpoint_architecture(path)
    compared = (have[:1], want[:1]) if scale == "micro" else (have, want)
    if compared[0] != compared[1]:
        raise ChainError(f"--checkpoint {path} is a {have[0]} backbone (dim {have[1]}, {have[2]} layers), "
                         f"but {cell.paper} {cell.table} {cell.row!r} needs {cell.architecture} "
                         f"({want[0]}, dim {want[1]}, {want[2]} layers)")


def _load(recipe_dir, argv, downstream=False):
    """The hparams of ``argv`` as the recipe loads them, built on the meta device."""
    from hyperpyyaml import load_hyperpyyaml

    if downstream:
        from speechbrain_ext.downstream.recipe import parse_arguments
        hparams_file, _, overrides = parse_arguments(argv, recipe_dir)
    else:
        from speechbrain_ext.training.recipe_cli import parse_arguments
        hparams_file, _, overrides = parse_arguments(argv, recipe_dir, skip_unknown_file_keys=True)
    with torch.device("meta"), open(hparams_file) as f:
        return load_hyperpyyaml(f, overrides)


@lru_cache(maxsize=1)
def _run_suite():
    """recipes/downstream/run_suite.py as a module: its task table and the
    per-task command it builds (the downstream step runs that script)."""
    spec = importlib.util.spec_from_file_location("reproduce_run_suite",
                                                  REPO_ROOT / "recipes" / "downstream" / "run_suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipe_args(step):
    """The recipe arguments of a step's command (after the launcher and the script)."""
    script = next(i for i, a in enumerate(step.argv) if str(a).endswith(".py"))
    return [a for a in step.argv[script + 1:] if not a.startswith("--device")]


def check_plan(plan, cell, cache=None):
    """Load every step's YAML with its overrides and build its model (meta
    device). A pre-training's backbone stands in (as a meta checkpoint) for
    its output in the steps after it; a released model is the row's zoo
    architecture. ``cache`` (a dict kept between calls) skips steps already
    checked. Returns the class names of the models built."""
    from speechbrain_ext.models.registry import build_backbone, save_backbone

    built = []
    cache = {} if cache is None else cache
    stand_ins = cache.setdefault("stand_ins", {})
    checked = cache.setdefault("checked", set())
    folder = cache.setdefault("folder", Path(tempfile.mkdtemp(prefix="reproduce_check_")))

    def stand_in(checkpoint, backbone=None):
        if checkpoint not in stand_ins:
            if backbone is None:
                with torch.device("meta"):
                    backbone = build_backbone({"zoo": cell.architecture or "w2v2_base"})
            # fine-tuning / downstream YAMLs set no architecture key: they load
            # alike for every checkpoint of one kind (wav2vec2, SEW, SEW-D)
            shape = type(backbone.config).__name__
            stand_ins[checkpoint] = (save_backbone(backbone, folder / f"{len(stand_ins)}" / "backbone.ckpt"), shape)
        return str(stand_ins[checkpoint][0])

    def identity(step):
        """What a check depends on: the command without its own paths, and
        the kind of checkpoint it reads (two rows fine-tuning two checkpoints
        of one kind with one YAML are one check)."""
        if step.kind == "pretrain":
            return step.command()
        stand_in(step.checkpoint)
        paths = (str(step.checkpoint), str(step.output.parent), str(step.output))
        args = tuple(a for a in step.argv if not any(p in a for p in paths))
        return step.kind, args, stand_ins[step.checkpoint][1]

    for step in plan:
        if step.argv is None or identity(step) in checked:
            continue
        checked.add(identity(step))
        if step.kind == "pretrain":
            args = [a if not a.startswith("--init_from=") else f"--init_from={stand_in(a.split('=', 1)[1])}"
                    for a in _recipe_args(step)]
            hparams = _load(REPO_ROOT / "recipes" / "pretrain", args)
            model = hparams["model"]
            stand_in(step.checkpoint, model.backbone)
            built += [type(model).__name__, type(model.backbone).__name__]
        elif step.kind == "finetune":
            args = [a if not a.startswith("--pretrained=") or a == "--pretrained=null"
                    else f"--pretrained={stand_in(step.checkpoint)}" for a in _recipe_args(step)]
            model = _load(REPO_ROOT / "recipes" / "finetune", args)["model"]
            built += [type(model).__name__, type(model.backbone).__name__]
        elif step.kind == "downstream":
            suite = _run_suite()
            args, passthrough = suite.parse(_recipe_args(step))
            args.backbone = stand_in(step.checkpoint)
            for freeze in ([True] if args.frozen else []) + ([False] if args.unfrozen else []):
                for task in args.tasks:
                    cmd = suite.command(args, task, freeze, [a for a in passthrough if not a.startswith("--device")])
                    hparams = _load(Path(cmd[1]).parent, cmd[2:], downstream=True)
                    built.append(type(hparams["upstream"].backbone).__name__)
    return built
