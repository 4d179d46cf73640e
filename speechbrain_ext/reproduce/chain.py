"""A cell's chain as commands: plan, check before running, run with reuse.

Every step's output folder is named by what it is (the YAML, its
overrides, its input checkpoint, the scale), so two rows that need the same
pre-training get the same folder and the second one reuses it: a step is
done when its ``reproduce_done.json`` marker exists (written after its
command succeeded); an unfinished step is run again (the recipes resume from
their last checkpoint).

Layout under ``<output_root>/<scale>/``: ``pretrain/<yaml>-<hash>``,
``finetune/<input>/<yaml>-<hash>``, ``downstream/<input>`` (one
``results.jsonl`` for every task of that checkpoint).

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
"""
import hashlib
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from speechbrain_ext.reproduce.registry import REGISTRY_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
DONE = "reproduce_done.json"
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
    model (or, if the chain has none, the pre-training)."""
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
    checkpoint: str = None  # the backbone the step produces (pretrain) or reads
    results_file: Path = None  # downstream: the checkpoint's results.jsonl

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


def _pretrain_step(spec, options, init_from, root, gpus=1):
    micro = options.scale == "micro"
    settings = micro_settings()
    # the YAMLs' batch_seconds is per process: the paper's effective batch
    # needs its number of GPUs (one process each)
    launcher = [options.python] if micro or not gpus or gpus <= 1 else ["torchrun", f"--nproc_per_node={gpus}"]
    argv = [*launcher, "recipes/pretrain/train.py", f"hparams/{spec['hparams']}"]
    args = list(spec.get("args", []))
    if spec.get("pretrain_on"):
        args.append(f"--pretrain_on={spec['pretrain_on']}")
    if init_from:
        args.append(f"--init_from={init_from}")
    files = list(spec.get("overrides_files", []))
    if micro:
        files = settings["pretrain"]["overrides_files"] + files
        args += settings["pretrain"]["args"] + (settings["quick"]["pretrain"] if options.quick else [])
    name = f"{Path(spec['hparams']).stem}-{_slug(spec['hparams'], files, args, options.scale)}"
    out = root / "pretrain" / name
    data = corpora_root(options) / CORPORA["librispeech"][0]
    for f in files:
        argv += ["--overrides_file", f]
    argv += [f"--data_folder={data}", f"--output_folder={out}", *args]
    if micro:
        argv.append("--device=cpu")
    return Step("pretrain", argv, out, spec, ["librispeech"], checkpoint=str(out / "save"))


def _finetune_step(spec, options, checkpoint, root):
    micro = options.scale == "micro"
    settings = micro_settings()
    files = list(spec.get("overrides_files", []))
    args = []
    if micro:
        files = files + settings["finetune"]["overrides_files"]  # micro last: it sets the micro data
        args += settings["finetune"]["args"] + settings["finetune"].get("by_hparams", {}).get(spec["hparams"], [])
        args += settings["quick"]["finetune"] if options.quick else []
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
    corpora = ["librispeech"] + (["librilight"] if spec["hparams"].startswith("ll") else [])
    argv = [options.python, "recipes/finetune/train.py", f"hparams/{spec['hparams']}"]
    for f in files:
        argv += ["--overrides_file", f]
    base = corpora_root(options)
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
    """
    root = Path(options.output_root) / options.scale
    steps, checkpoint = [], None
    chain = list(cell.chain)
    has_released = any(s["step"] == "released" for s in chain)
    released_path = None
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
            if options.checkpoint and not has_released:
                checkpoint = options.checkpoint
                continue
            init = released_path if spec.get("init_from") == "released" else None
            step = _pretrain_step(spec, options, init, root, cell.needs.get("gpus") or 1)
            steps.append(step)
            checkpoint = step.checkpoint
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
