"""A cell's chain as commands: plan, check before running, run with reuse.

Every step's output folder is named by what it is (the YAML, its
overrides, its input checkpoint, the scale), so two rows that need the same
pre-training get the same folder and the second one reuses it: a step is
done when its ``reproduce_done.json`` marker exists (written after its
command succeeded); an unfinished step is run again (the recipes resume from
their last checkpoint).

A pre-training step may name the checkpoint its chain reads
(``checkpoint: best``, the lowest validation loss; ``checkpoint: last``;
``at_update: U``, the paper's update U): a ``select`` step after it copies
that checkpoint's backbone (with the checkpoint's meta: validation loss,
Table 2's accounting) to ``selected/<best|update-N>/backbone.ckpt``; the
pre-training folder does not depend on the choice, so cells that read
other checkpoints of one run share it. At micro scale update U is the same
fraction of the shortened run (U x micro max_updates / the YAML's).

Layout under ``<output_root>/<scale>/``: ``pretrain/<yaml>-<hash>`` (and its
``selected/<which>``), ``finetune/<input>/<yaml>-<hash>``,
``downstream/<input>`` (one ``results.jsonl`` for every task of that
checkpoint).

Example
-------
>>> from speechbrain_ext.reproduce.registry import find_cells
>>> cell = find_cells("paper003", "table1", "5s", "KWS-12 frozen")[0]
>>> plan = plan_cell(cell, Options(scale="micro", output_root="/tmp/r", corpora_root="data/mini"))
>>> [step.kind for step in plan]
['pretrain', 'downstream', 'metric']
>>> plan[0].argv[1:3]
['recipes/pretrain/train.py', 'hparams/w2v2_5s.yaml']
>>> missing_corpora(plan, Options(scale="micro", corpora_root="/nowhere"))[0][2]
'python -m data_prep.synthetic --out /nowhere --only librispeech'
>>> cell = find_cells("paper001", "table5", "150 sec / 100 k", "ER acc")[0]
>>> plan = plan_cell(cell, Options(scale="micro", output_root="/tmp/r"))
>>> [step.kind for step in plan]
['pretrain', 'select', 'downstream', 'metric']
>>> plan[1].output.name  # update 100k of the paper's 400k: update 8 of the micro run's 32
'update-8'
"""
import argparse
import fnmatch
import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from speechbrain_ext.reproduce.registry import REGISTRY_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
PRETRAIN_DIR = REPO_ROOT / "recipes" / "pretrain"
DONE = "reproduce_done.json"
SELECTIONS = ("best", "last")  # a pre-training step's ``checkpoint:`` (or ``at_update: U``)
# corpus key -> (folder under the corpora root, data_prep module, synthetic name)
CORPORA = {
    "librispeech": ("LibriSpeech", "librispeech", "librispeech"),
    "librilight": ("librispeech_finetuning", "librilight", "librilight"),
    "speech_commands": ("speech_commands_v0.02", "speech_commands", "speech_commands"),
    "timers_and_such": ("timers-and-such", "timers_and_such", "timers_and_such"),
    "iemocap": ("IEMOCAP_full_release", "iemocap", "iemocap"),
    "voxceleb1": ("VoxCeleb1", "voxceleb", "voxceleb1"),
    "fluent_speech_commands": ("fluent_speech_commands_dataset", "fluent_speech", "fluent_speech_commands"),
    "common_voice_zh": ("cv-corpus-zh-CN", "common_voice", "common_voice_zh"),
    "tedlium3": ("TEDLIUM_release-3", "tedlium3", "tedlium3"),
    "voxpopuli_en": ("voxpopuli", "voxpopuli", "voxpopuli_en"),
    "fisher_swbd": ("fisher_swbd", "fisher_swbd", "fisher_swbd"),
}
TASK_CORPUS = {"kws12": "speech_commands", "kws35": "speech_commands", "sf": "timers_and_such",
               "er": "iemocap", "sid": "voxceleb1", "asv": "voxceleb1", "asr": "librispeech",
               "pr": "librispeech", "ic": "fluent_speech_commands", "asr_zh": "common_voice_zh"}
SEQUENCE_TASKS = ("sf", "asr", "pr", "asr_zh")


class ChainError(RuntimeError):
    """A chain that cannot start (missing corpus, checkpoint, ...) or whose step failed."""


@dataclass
class Options:
    """How to run: ``scale`` ``paper`` or ``micro``; ``quick`` (micro only)
    the registry's smallest settings; ``checkpoint`` replaces the released
    model (or, if the chain has none, the pre-training; a save folder is
    then selected from as the pre-training's would be, see ``plan_cell``)."""
    scale: str = "paper"
    output_root: str = "results/reproduce/runs"
    corpora_root: str = None
    checkpoint: str = None
    quick: bool = False
    lm_path: str = None
    python: str = sys.executable
    extra: dict = field(default_factory=dict)


@dataclass
class Step:
    """One command of a chain (``argv`` None for in-process metric steps)."""
    kind: str
    argv: list
    output: Path
    spec: dict
    corpora: list = field(default_factory=list)
    checkpoint: str = None  # the backbone the step produces (pretrain, select) or reads
    results_file: Path = None  # downstream: the checkpoint's results.jsonl
    source: str = None  # select: the save folder it picks a checkpoint of

    @property
    def done(self):
        return self.argv is None or (self.output / DONE).is_file()

    def command(self):
        return " ".join(shlex.quote(str(a)) for a in self.argv) if self.argv else \
            f"(in-process) {self.spec.get('source')} metric {json.dumps(self.spec)}"


def micro_settings():
    with open(REGISTRY_DIR / "micro.yaml") as f:
        return yaml.safe_load(f)


def corpora_root(options):
    if options.corpora_root:
        return Path(options.corpora_root)
    if options.scale == "micro":
        return Path(os.environ.get("SB_EXT_DATA") or micro_settings()["corpora_root"])
    return Path("data")


def _slug(*parts):
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _checkpoint_slug(path):
    path = Path(path)
    return f"{path.name}-{_slug(str(path.resolve()))}"


def _micro_pretrain(hparams, quick):
    """``(overrides files, args)`` micro.yaml gives the pre-training YAML
    ``hparams``: its ``pretrain.by_hparams`` entry whose pattern matches the
    file name (used instead of the common settings; ``quick`` replaces its
    ``args``), else the common ``overrides_files`` / ``args`` (+ ``quick``)."""
    settings = micro_settings()
    for pattern, entry in settings["pretrain"].get("by_hparams", {}).items():
        if fnmatch.fnmatch(Path(hparams).name, pattern):
            return list(entry["overrides_files"]), list(entry["quick"] if quick else entry["args"])
    return (list(settings["pretrain"]["overrides_files"]),
            settings["pretrain"]["args"] + (settings["quick"]["pretrain"] if quick else []))


def _pretrain_inputs(spec, options, init_from=None):
    """``(overrides files, recipe args)`` of a pre-training step (the
    scale's settings included), as its command and folder name use them."""
    args = list(spec.get("args", []))
    if spec.get("pretrain_on"):
        args.append(f"--pretrain_on={spec['pretrain_on']}")
    if init_from:
        args.append(f"--init_from={init_from}")
    files = list(spec.get("overrides_files", []))
    if options.scale == "micro":
        micro_files, micro_args = _micro_pretrain(spec["hparams"], options.quick)
        files, args = micro_files + files, args + micro_args
    return files, args


def _read_plain(path):
    """A HyperPyYAML file's top-level plain values (tagged ones read as
    ``recipe_cli.UNKNOWN``, as the recipes' override checker reads them)."""
    from speechbrain_ext.training.recipe_cli import PlainValuesLoader

    with open(path) as f:
        values = yaml.load(f, Loader=PlainValuesLoader)
    if not isinstance(values, dict):
        raise ChainError(f"{path}: expected a mapping of hyper-parameters")
    return values


@lru_cache(maxsize=None)
def recipe_settings(hparams, files=(), args=()):
    """The plain top-level values a pre-training run of ``hparams`` gets:
    the YAML (its ``variant_of`` base first, ``recipe_cli.resolve_variant``),
    then each overrides file, then ``--key=value`` args, later ones winning
    (as the recipe merges them; nested mappings are not merged: only plain
    keys are read here). Callers must not modify the (cached) result."""
    from speechbrain_ext.training.recipe_cli import read_overrides_file, resolve_variant

    path = PRETRAIN_DIR / "hparams" / hparams
    if not path.is_file():
        raise ChainError(f"no pre-training YAML {path}")
    base, changes = resolve_variant(path)
    values = {**_read_plain(base), **changes}
    for name in files:
        found = next((p for p in (PRETRAIN_DIR / name, REPO_ROOT / name, Path(name)) if p.is_file()), None)
        if found is None:
            raise ChainError(f"overrides file {name} of {hparams}: not found under {PRETRAIN_DIR}")
        values.update(read_overrides_file(found))
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            key, text = arg[2:].split("=", 1)
            values[key] = yaml.safe_load(text)
    return values


def _pretrain_step(spec, options, init_from, root, gpus=1):
    micro = options.scale == "micro"
    files, args = _pretrain_inputs(spec, options, init_from)
    # a YAML that sets gpus (paper 001's Table 1: the recipe refuses another
    # number of processes) runs on that many; else the row's GPUs
    yaml_gpus = recipe_settings(spec["hparams"], tuple(files), tuple(args)).get("gpus")
    gpus = yaml_gpus if isinstance(yaml_gpus, int) and not isinstance(yaml_gpus, bool) else gpus
    # the YAMLs' batch_seconds is per process: the paper's effective batch
    # needs its number of GPUs (one process each)
    launcher = [options.python] if micro or not gpus or gpus <= 1 else ["torchrun", f"--nproc_per_node={gpus}"]
    argv = [*launcher, "recipes/pretrain/train.py", f"hparams/{spec['hparams']}"]
    name = f"{Path(spec['hparams']).stem}-{_slug(spec['hparams'], files, args, options.scale)}"
    out = root / "pretrain" / name
    data = corpora_root(options) / CORPORA["librispeech"][0]
    for f in files:
        argv += ["--overrides_file", f]
    argv += [f"--data_folder={data}", f"--output_folder={out}", *args]
    if micro:
        argv.append("--device=cpu")
    return Step("pretrain", argv, out, spec, ["librispeech"], checkpoint=str(out / "save"))


def _selection(spec, where):
    """``(which, paper update)`` of a pre-training spec: ``("best", None)``,
    ``("last", None)`` or ``("update", U)``; None when the chain reads the
    run's save folder as it is (its newest checkpoint)."""
    which, update = spec.get("checkpoint"), spec.get("at_update")
    if which is not None and update is not None:
        raise ChainError(f"{where}: a pre-training step takes checkpoint: or at_update:, not both")
    if update is not None:
        try:
            update = int(float(update))
        except (TypeError, ValueError):
            raise ChainError(f"{where}: at_update must be a number of updates, got {update!r}") from None
        if update < 1:
            raise ChainError(f"{where}: at_update must be a positive number of updates, got {update}")
        return "update", update
    if which is None:
        return None
    if which not in SELECTIONS:
        raise ChainError(f"{where}: checkpoint: {which!r} is not a selection; expected one of "
                         f"{', '.join(SELECTIONS)} (or at_update: U)")
    return which, None


def _update_at_scale(spec, options, update, where, init_from=None):
    """The update of this scale's run that stands for the paper's
    ``update`` (None: the run's last), checked to be one the run keeps: a
    ``ChainError`` naming the YAML, its settings and the update otherwise."""
    files, args = _pretrain_inputs(spec, options, init_from)
    ours = recipe_settings(spec["hparams"], tuple(files), tuple(args))
    paper = recipe_settings(spec["hparams"], tuple(spec.get("overrides_files", [])), tuple(spec.get("args", [])))
    settings = f"{spec['hparams']}" + "".join(f" + {f}" for f in files) + (f" {' '.join(args)}" if args else "")
    for values in (paper, ours):
        if not isinstance(values.get("max_updates"), int) or values["max_updates"] < 1:
            raise ChainError(f"{where}: {settings} sets no max_updates (a positive int): the checkpoint "
                             f"at an update cannot be placed")
    total = ours["max_updates"]
    if update is None:
        scaled = total
    elif update > paper["max_updates"]:
        raise ChainError(f"{where}: update {update} is past the end of {spec['hparams']}'s run "
                         f"(max_updates: {paper['max_updates']})")
    elif (update * total) % paper["max_updates"]:
        raise ChainError(f"{where}: the paper's update {update} of {paper['max_updates']} is update "
                         f"{update * total / paper['max_updates']:g} of this run's {total} ({settings}): "
                         f"not a whole update")
    else:  # the same fraction of the run (micro: a shortened one)
        scaled = update * total // paper["max_updates"]
    every, at = ours.get("keep_every_updates"), ours.get("keep_checkpoints_at")
    at = list(at) if isinstance(at, (list, tuple)) else []  # unset, null or tagged: none
    if not ((isinstance(every, int) and every > 0 and scaled % every == 0) or scaled in at):
        raise ChainError(f"{where}: {settings} keeps no checkpoint at update {scaled}"
                         + (f" (the paper's {update})" if update is not None and update != scaled else "")
                         + f": it keeps every keep_every_updates: {every} and keep_checkpoints_at: {at}, "
                         f"up to max_updates: {total}")
    return scaled


def _select_step(spec, selection, save, parent, options, where, init_from=None):
    """The step that copies the checkpoint ``selection`` names (see
    ``_selection``) of the save folder ``save`` to
    ``parent/<best | update-N>/backbone.ckpt``; the update is checked now,
    not after hours of pre-training."""
    which, update = selection
    scaled = None if which == "best" else _update_at_scale(spec, options, update, where, init_from)
    out = Path(parent) / ("best" if which == "best" else f"update-{scaled}")
    choice = ["--best"] if which == "best" else ["--update", str(scaled)]
    argv = [options.python, "-m", "speechbrain_ext.reproduce.chain", "select", str(save), "--out", str(out), *choice]
    return Step("select", argv, out, {"step": "select", "checkpoint": which, "update": scaled,
                                      "paper_update": update}, [], checkpoint=str(out), source=str(save))


def _is_save_folder(path):
    from speechbrain_ext.io.checkpoints import PREFIX

    return Path(path).is_dir() and any(p.is_dir() for p in Path(path).glob(PREFIX + "*"))


def _last_wins(args):
    """``--key=value`` args with one per key: the last value, at the first place.

    >>> _last_wins(["--a=1", "--b=2", "--a=3"])
    ['--a=3', '--b=2']
    """
    keyed = {}
    for arg in args:
        keyed[arg.split("=", 1)[0]] = arg
    return [keyed[k] for k in dict.fromkeys(a.split("=", 1)[0] for a in args)]


def _finetune_step(spec, options, checkpoint, root):
    micro = options.scale == "micro"
    settings = micro_settings()
    files = list(spec.get("overrides_files", []))
    args = list(spec.get("args", []))  # the paper's own settings (paper 001: LM weight 2, word score 0)
    if micro:
        files = files + settings["finetune"]["overrides_files"]  # micro last: it sets the micro data
        args += settings["finetune"]["args"] + settings["finetune"].get("by_hparams", {}).get(spec["hparams"], [])
        args += settings["quick"]["finetune"] if options.quick else []
        args = _last_wins(args)  # --quick's one-point LM grid over the paper's
    if spec.get("random_init"):
        args += ["--pretrained=null"]
        if not micro:  # micro.yaml's random_init_architecture is the micro shape
            args.append(f"--random_init_architecture={{zoo: {spec['random_init']}}}")
        source = f"random-{spec['random_init']}"
    else:
        args.append(f"--pretrained={checkpoint}")
        source = _checkpoint_slug(checkpoint)
    if options.lm_path and not micro:
        args.append(f"--lm_path={options.lm_path}")
    name = f"{Path(spec['hparams']).stem}-{_slug(spec['hparams'], files, args, options.scale)}"
    out = root / "finetune" / source / name
    argv = [options.python, "recipes/finetune/train.py", f"hparams/{spec['hparams']}"]
    for f in files:
        argv += ["--overrides_file", f]
    base = corpora_root(options)
    if spec.get("corpus"):  # a transfer corpus (paper 002 Table 5): its folder only, no LibriSpeech
        corpora = [spec["corpus"]]
        argv += [f"--corpus_folder={base / CORPORA[spec['corpus']][0]}", f"--output_folder={out}", *args]
    else:
        corpora = ["librispeech"] + (["librilight"] if spec["hparams"].startswith("ll") else [])
        argv += [f"--data_folder={base / CORPORA['librispeech'][0]}",
                 f"--librilight_folder={base / CORPORA['librilight'][0]}", f"--output_folder={out}", *args]
    if micro:
        argv.append("--device=cpu")
    return Step("finetune", argv, out, spec, corpora, checkpoint=checkpoint)


def _downstream_step(spec, options, checkpoint, root):
    micro = options.scale == "micro"
    task, freeze = spec["task"], bool(spec["freeze"])
    out = root / "downstream" / _checkpoint_slug(checkpoint)
    argv = [options.python, "recipes/downstream/run_suite.py", str(checkpoint),
            "--frozen" if freeze else "--unfrozen", "--tasks", task,
            "--corpora_root", str(corpora_root(options)), "--output_root", str(out)]
    if micro:
        argv.append("--micro")
        extra = micro_settings()["quick"]["downstream"]["sequence" if task in SEQUENCE_TASKS else "utterance"] \
            if options.quick else []
        argv += ["--", "--device=cpu", *extra]
    # one output root per checkpoint; the marker is per task and freeze
    return Step("downstream", argv, out / f"{task}_freeze_{freeze}", spec, [TASK_CORPUS[task]],
                checkpoint=checkpoint, results_file=out / "results.jsonl")


def plan_cell(cell, options):
    """The steps of ``cell``'s chain for ``options`` (nothing runs).

    A ``released`` step is filled by ``options.checkpoint`` (at micro scale,
    without one, by a micro pre-training of the model's stand-in YAML);
    without a released step, ``options.checkpoint`` replaces the
    pre-training. A released step at paper scale without a checkpoint is a
    ``ChainError``.

    A pre-training step's ``checkpoint: best | last`` or ``at_update: U``
    adds a ``select`` step after it (module docstring); the update must be
    one the run keeps (``keep_every_updates`` / ``keep_checkpoints_at`` of
    its YAML at this scale), else a ``ChainError`` before anything runs.
    An ``options.checkpoint`` that replaces such a pre-training is selected
    from the same way when it is a save folder (``CKPT+*`` folders), and
    used as it is otherwise (a backbone file, an HF folder, a fairseq .pt:
    the checkpoint the user chose).
    """
    root = Path(options.output_root) / options.scale
    steps, checkpoint = [], None
    chain = list(cell.chain)
    has_released = any(s["step"] == "released" for s in chain)
    released_path = None
    where = f"{cell.paper} {cell.table} {cell.row!r} {cell.column!r}"
    for spec in chain:
        kind = spec["step"]
        if kind == "released":
            released_path = options.checkpoint
            if released_path is None:
                info = _released_info(cell, spec["model"])
                if options.scale != "micro":
                    raise ChainError(f"{cell.paper} {cell.table} {cell.row!r} starts from the released "
                                     f"{info['name']}: give it with --checkpoint PATH (an HF folder or "
                                     f"a fairseq .pt)")
                stand_in = _pretrain_step({"step": "pretrain", "hparams": info["micro_stand_in"]}, options, None, root)
                steps.append(stand_in)
                released_path = stand_in.checkpoint
            checkpoint = released_path
        elif kind == "pretrain":
            selection = _selection(spec, where)
            init = released_path if spec.get("init_from") == "released" else None
            if options.checkpoint and not has_released:
                checkpoint = options.checkpoint
                if selection and _is_save_folder(checkpoint):
                    parent = root / "selected" / _checkpoint_slug(checkpoint)
                    steps.append(_select_step(spec, selection, checkpoint, parent, options, where, init))
                    checkpoint = steps[-1].checkpoint
                continue
            step = _pretrain_step(spec, options, init, root, cell.needs.get("gpus") or 1)
            steps.append(step)
            checkpoint = step.checkpoint
            if selection:
                steps.append(_select_step(spec, selection, step.checkpoint, step.output / "selected", options,
                                          where, init))
                checkpoint = steps[-1].checkpoint
        elif kind == "finetune":
            step = _finetune_step(spec, options, checkpoint, root)
            steps.append(step)
        elif kind == "downstream":
            steps.append(_downstream_step(spec, options, checkpoint, root))
        elif kind == "metric":
            steps.append(Step("metric", None, root, spec, [], checkpoint=checkpoint))
        else:
            raise ChainError(f"unknown step kind {kind!r} in {cell.key}")
    return steps


def _released_info(cell, model):
    from speechbrain_ext.reproduce.registry import load_paper, paper_files

    for path in paper_files():
        if path.stem == cell.paper:
            return load_paper(str(path))["released"][model]
    raise ChainError(f"no released model {model!r} for {cell.paper}")


def missing_corpora(steps, options):
    """``[(corpus, folder, command)]`` of every corpus a step reads that is
    not on disk, with the command that makes it."""
    root = corpora_root(options)
    missing = []
    for key in dict.fromkeys(c for s in steps if not s.done for c in s.corpora):
        folder, module, synthetic = CORPORA[key]
        if not (root / folder).is_dir():
            if options.scale == "micro":
                command = f"python -m data_prep.synthetic --out {root} --only {synthetic}"
            else:
                command = (f"place the real corpus at {root / folder} (or give --corpora_root), then "
                           f"python -m data_prep.{module} --data_folder {root / folder} --save_folder "
                           f"results/prep/{key} (the recipes also run it)")
            missing.append((key, root / folder, command))
    return missing


def run_step(step, log=print):
    """Run ``step``'s command from the repository root; write its marker."""
    log(f"[reproduce] running: {step.command()}")
    step.output.mkdir(parents=True, exist_ok=True)
    with open(step.output / "reproduce_log.txt", "a") as logfile:
        proc = subprocess.run(step.argv, cwd=REPO_ROOT, stdout=logfile, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    if proc.returncode != 0:
        tail = (step.output / "reproduce_log.txt").read_text().splitlines()[-15:]
        raise ChainError(f"step {step.kind} failed (exit {proc.returncode}); log "
                         f"{step.output / 'reproduce_log.txt'}:\n  " + "\n  ".join(tail))
    (step.output / DONE).write_text(json.dumps({"command": step.argv}, indent=1))


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def select_checkpoint(save_folder, which="best", update=None):
    """``(CKPT+* folder, its meta)`` of a pre-training's save folder:
    ``which="best"`` the complete checkpoint with the lowest validation
    ``loss`` (paper 001: "the run (and step) with the lowest overall
    validation loss"; ties: the earlier update), ``which="update"`` the one
    saved after ``update`` updates (the newest if several). Time-based
    intra-epoch checkpoints (no ``update`` / ``loss`` in their meta) are
    never chosen. Nothing to choose is a ``ChainError`` naming the folder
    and the updates it has.

    >>> import tempfile
    >>> from speechbrain_ext.io.checkpoints import MARKER, META_FILE
    >>> save = Path(tempfile.mkdtemp())
    >>> for update, loss in ((3, 4.5), (6, 4.1), (9, 4.3)):
    ...     (save / f"CKPT+{update}").mkdir()
    ...     _ = (save / f"CKPT+{update}" / META_FILE).write_text(
    ...         f"unixtime: {update}\\nend-of-epoch: false\\nupdate: {update}\\nloss: {loss}\\n")
    ...     _ = (save / f"CKPT+{update}" / MARKER).write_text("")
    >>> select_checkpoint(save)[0].name, select_checkpoint(save, "update", 9)[0].name
    ('CKPT+6', 'CKPT+9')
    >>> select_checkpoint(save, "update", 12)
    Traceback (most recent call last):
    ...
    speechbrain_ext.reproduce.chain.ChainError: ... has no complete checkpoint at update 12: it has updates 3, 6, 9 ...
    """
    from speechbrain_ext.io import checkpoints

    save_folder = Path(save_folder)
    found = []
    for folder in checkpoints.complete_checkpoints(save_folder):  # newest first
        try:
            meta = checkpoints.read_meta(folder)
        except ValueError:  # damaged: the recipe skips it too
            continue
        if _finite(meta.get("update")):
            found.append((folder, meta))
    if not found:
        raise ChainError(f"{save_folder} has no complete checkpoint with an update count (CKPT+* folders with "
                         f"a {checkpoints.MARKER} marker and update: in {checkpoints.META_FILE}): has its "
                         f"pre-training run to the end?")
    updates = ", ".join(str(u) for u in sorted({int(m["update"]) for _, m in found}))
    if which == "best":
        scored = [(f, m) for f, m in found if _finite(m.get("loss"))]
        if not scored:
            raise ChainError(f"{save_folder}: none of its checkpoints (updates {updates}) has a finite "
                             f"validation loss (loss: in {checkpoints.META_FILE}); every validation diverged?")
        return min(scored, key=lambda fm: (float(fm[1]["loss"]), int(fm[1]["update"])))
    if which != "update" or update is None:
        raise ChainError(f"select_checkpoint: which must be 'best' or 'update' (with update=U), got {which!r}")
    at = [(f, m) for f, m in found if int(m["update"]) == int(update)]
    if not at:
        raise ChainError(f"{save_folder} has no complete checkpoint at update {int(update)}: it has updates "
                         f"{updates} (a run keeps those of keep_every_updates / keep_checkpoints_at and its "
                         f"best ones; a run stopped early has fewer)")
    return at[0]


def write_selected(save_folder, out, which="best", update=None):
    """Copy the backbone of :func:`select_checkpoint`'s choice to
    ``out/backbone.ckpt``, its metadata extended with the checkpoint's
    scalar meta (validation ``loss``, ``update``, paper 001's Table 2
    accounting: ``measured_hours``, ``max_repeats``, ...), which
    ``metrics.pretrain_value`` reads; ``out/selected.json`` says which
    checkpoint it is. Returns the backbone file's path."""
    from speechbrain_ext.models.registry import BACKBONE_FILE, read_backbone_file, read_backbone_metadata, save_backbone

    folder, meta = select_checkpoint(save_folder, which, update)
    source = folder / BACKBONE_FILE
    if not source.is_file():
        raise ChainError(f"{folder} (the {which} checkpoint of {save_folder}) holds no {BACKBONE_FILE}")
    scalars = {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, (bool, int, float, str))}
    metadata = {**scalars, **read_backbone_metadata(source), "selected": which, "selected_from": folder.name}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / (BACKBONE_FILE + ".partial")  # renamed when whole: a kill leaves no half file
    save_backbone(read_backbone_file(source), partial, metadata=metadata)
    os.replace(partial, out / BACKBONE_FILE)
    (out / "selected.json").write_text(json.dumps(
        {"which": which, "checkpoint": str(folder), "update": int(meta["update"]), "loss": meta.get("loss")}, indent=1))
    return out / BACKBONE_FILE


def _main(argv=None):
    """``python -m speechbrain_ext.reproduce.chain select SAVE --out DIR (--best | --update U)``:
    the ``select`` step's command."""
    p = argparse.ArgumentParser(prog="python -m speechbrain_ext.reproduce.chain", description=_main.__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sel = sub.add_parser("select", help="copy one checkpoint's backbone of a pre-training save folder")
    sel.add_argument("save_folder")
    sel.add_argument("--out", required=True)
    group = sel.add_mutually_exclusive_group(required=True)
    group.add_argument("--best", action="store_true", help="the lowest validation loss")
    group.add_argument("--update", type=int, help="the checkpoint saved after this many updates")
    args = p.parse_args(argv)
    which = "best" if args.best else "update"
    try:
        path = write_selected(args.save_folder, args.out, which, args.update)
    except ChainError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    chosen = json.loads((Path(args.out) / "selected.json").read_text())
    print(f"[reproduce] selected {chosen['checkpoint']} (update {chosen['update']}, validation loss "
          f"{chosen['loss']}) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
