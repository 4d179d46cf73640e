#!/usr/bin/env python3
"""The evidence study (issue 15): pre-train every method on one synthetic
corpus, probe and fine-tune its checkpoints against random networks of the
same shape, and write one table and the figures.

    python benchmarks/ssl_study.py [--config benchmarks/ssl_study.yaml] [--overrides_file F.yaml ...]
        [--seed S] [--stage data|pretrain|evaluate|report|all] [--only NAME ...] [--out DIR]

Every setting is in the YAML (``benchmarks/ssl_study.yaml``; the micro variant
``benchmarks/ssl_study_micro.yaml`` names it with ``variant_of`` and changes
a few keys; ``--overrides_file`` files are merged on top, mappings key by
key). ``--seed`` and ``--out`` override the YAML's ``seed`` / ``output_folder``.

Stages (``all``: each in turn; each prints its elapsed time):

* ``data``: the synthetic LibriSpeech (``data_prep.synthetic``) of
  ``corpus.hours`` hours and the study seed, in ``corpus.folder`` (named by
  seed and hours); an up-to-date corpus is reused.
* ``pretrain``: each run of ``pretrain.runs`` (one at a time, ``init_from``
  runs after the run they start from) as a subprocess of
  ``recipes/pretrain/train.py``, logged to ``<out>/logs/pretrain_<run>.log``;
  a finished run (a complete checkpoint at ``max_updates``) is skipped, an
  interrupted one resumes (the recipe resumes from its checkpoints). Runs
  also keep checkpoints at ``pretrain.keep_fractions`` of ``max_updates``
  (unless a run sets ``keep_checkpoints_at`` itself).
* ``evaluate``: for each run, its kept checkpoints and the final one: the
  frame phone probe (``speechbrain_ext.analysis.phone_probe``: checkpoint vs
  random networks of its shape vs filter banks), the speaker probe
  (``recipes/pretrain/probe.py``'s task and scoring: mean-pooled features,
  logistic regression), for non-contrastive runs the per-dimension std of
  the projection heads' outputs; then CTC fine-tuning
  (``recipes/finetune/train.py``, a fixed budget of updates) from the final
  checkpoint and, once per architecture, from a random initialisation.
  Random networks are scored once per architecture. Every result is its own
  JSON file under ``<out>/evaluate/``, written when it is done and skipped
  when it exists with the same settings: a killed study goes on where it
  stopped.
* ``report``: ``<out>/report/study.md`` and ``study.json`` (a row per run),
  ``pretraining_curves.png`` and ``phone_probe_vs_hours.png``.

``--only NAME ...`` restricts ``pretrain`` and ``evaluate`` to those runs
(the report covers every run with results). The costs of each stage (and
of each run, probe and fine-tuning) are appended to ``<out>/timings.jsonl``.

Output folder::

    pretrain/<run>/                  the recipe's output folder (train_log.txt, save/CKPT+*) + study_run.json
    finetune/<run>/, finetune/random_<architecture>/   the fine-tuning recipe's output folders (wer.json)
    evaluate/<run>/{phone,speaker,projection}_update<N>.json, evaluate/<run>/finetune.json
    evaluate/random/<architecture>/{speaker,finetune}.json   random networks, once per shape
    logs/{pretrain,finetune}_<name>.log   the subprocesses' output
    report/study.md, study.json, pretraining_curves.png, phone_probe_vs_hours.png

Each result file holds a ``key`` (checkpoint, corpus and the settings that
decide it): one whose key differs from the current settings is recomputed.
A pre-training folder holding checkpoints of another command line is an
error (another ``--out``, or delete it). Settings errors (an unknown run in
``--only``, an ``init_from`` naming no run, a missing hparams / override
file, an override of the wrong type) stop the study before anything runs.
"""
import argparse
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from speechbrain_ext.io import checkpoints  # noqa: E402
from speechbrain_ext.io.checkpoints import CheckpointError  # noqa: E402
from speechbrain_ext.training.recipe_cli import (merge_overrides, parse_arguments,  # noqa: E402
                                                 resolve_path, yaml_defaults)

DEFAULT_CONFIG = REPO_ROOT / "benchmarks" / "ssl_study.yaml"
STAGES = ("data", "pretrain", "evaluate", "report")
VARIANT_KEY = "variant_of"
RUN_KEYS = {"hparams", "overrides_files", "overrides", "init_from"}
TOP_KEYS = {"seed", "corpus", "output_folder", "device", "pretrain", "evaluate", "report"}
CHECKPOINT_CHOICES = ("kept", "final")


class StudyError(Exception):
    """A setting, a command-line choice or a run that stops the study
    (printed as ``error: ...``, exit status 2)."""


def say(message):
    print(f"[study] {message}", flush=True)


# ---------------------------------------------------------------- settings


def read_yaml(path):
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise StudyError(f"{path}: malformed YAML: {err}") from err
    if not isinstance(values, dict):
        raise StudyError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values


def load_config(path=DEFAULT_CONFIG, overrides_files=()):
    """The study's settings: ``path`` (its ``variant_of`` base first, found
    beside it) with ``overrides_files`` merged on top (mappings key by key,
    other values replaced)."""
    path = Path(path)
    config = read_yaml(path)
    base = config.pop(VARIANT_KEY, None)
    if base is not None:
        base_path = path.parent / str(base)
        base_config = read_yaml(base_path)
        if VARIANT_KEY in base_config:
            raise StudyError(f"{path}: its base {base_path} is itself a variant (one level only)")
        config = merge_overrides(base_config, config)
    for name in overrides_files:
        extra = read_yaml(name)
        extra.pop(VARIANT_KEY, None)
        config = merge_overrides(config, extra)
    return config


def _need(mapping, key, where, kind=None):
    if not isinstance(mapping, dict) or key not in mapping:
        raise StudyError(f"{where}: missing setting {key!r}")
    value = mapping[key]
    if kind is not None and not isinstance(value, kind):
        raise StudyError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def check_config(config):
    """Fail on settings the study cannot run (unknown keys, an ``init_from``
    naming no run, a cycle); returns the runs in a valid order (every run
    after the one it starts from)."""
    unknown = sorted(set(config) - TOP_KEYS)
    if unknown:
        raise StudyError(f"unknown top-level setting(s) {unknown}; expected some of {sorted(TOP_KEYS)}")
    if not isinstance(_need(config, "seed", "config"), int) or isinstance(config["seed"], bool):
        raise StudyError(f"seed: expected an int, got {config['seed']!r}")
    corpus = _need(config, "corpus", "config", dict)
    hours = _need(corpus, "hours", "corpus")
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or hours <= 0:
        raise StudyError(f"corpus.hours: expected a positive number of hours, got {hours!r}")
    _need(corpus, "folder", "corpus", str)
    pretrain = _need(config, "pretrain", "config", dict)
    runs = _need(pretrain, "runs", "pretrain", dict)
    if not runs:
        raise StudyError("pretrain.runs: no run defined")
    for name, run in runs.items():
        if not isinstance(run, dict):
            raise StudyError(f"pretrain.runs.{name}: expected a mapping (hparams, ...), got {run!r}")
        bad = sorted(set(run) - RUN_KEYS)
        if bad:
            raise StudyError(f"pretrain.runs.{name}: unknown setting(s) {bad}; expected some of "
                             f"{sorted(RUN_KEYS)}")
        _need(run, "hparams", f"pretrain.runs.{name}", str)
        origin = run.get("init_from")
        if origin is not None and origin not in runs:
            raise StudyError(f"pretrain.runs.{name}.init_from: {origin!r} names no run "
                             f"(runs: {', '.join(runs)})")
        if origin == name:
            raise StudyError(f"pretrain.runs.{name}.init_from: a run cannot start from itself")
    choices = config.get("evaluate", {}).get("checkpoints", list(CHECKPOINT_CHOICES))
    if not isinstance(choices, list) or any(c not in CHECKPOINT_CHOICES for c in choices):
        raise StudyError(f"evaluate.checkpoints: expected a list of {CHECKPOINT_CHOICES}, got {choices!r}")
    return run_order(runs)


def run_order(runs):
    """Run names, each after the run it starts from (config order otherwise)."""
    order, visiting = [], []

    def visit(name):
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name):] + [name])
            raise StudyError(f"pretrain.runs: init_from forms a cycle: {cycle}")
        visiting.append(name)
        origin = runs[name].get("init_from")
        if origin is not None:
            visit(origin)
        visiting.pop()
        order.append(name)

    for name in runs:
        visit(name)
    return order


def run_settings(config, name):
    """A run's settings with ``pretrain.defaults`` under them (its own
    ``overrides`` merged into the defaults', its lists replacing theirs)."""
    defaults = copy.deepcopy(config["pretrain"].get("defaults") or {})
    run = copy.deepcopy(config["pretrain"]["runs"][name])
    merged = {**defaults, **run}
    merged["overrides"] = merge_overrides(defaults.get("overrides") or {}, run.get("overrides") or {})
    merged["overrides_files"] = list(run.get("overrides_files", defaults.get("overrides_files") or []))
    return merged


def select_runs(order, only):
    if not only:
        return list(order)
    unknown = [name for name in only if name not in order]
    if unknown:
        raise StudyError(f"--only: unknown run(s) {', '.join(unknown)}; the config defines "
                         f"{', '.join(order)}")
    return [name for name in order if name in only]


def format_hours(hours):
    return f"{float(hours):g}"


class Study:
    """Paths and settings of one study (config + seed + output folder)."""

    def __init__(self, config, seed=None, out=None):
        self.config = copy.deepcopy(config)
        if seed is not None:
            self.config["seed"] = seed
        if out is not None:
            self.config["output_folder"] = str(out)
        self.order = check_config(self.config)
        self.seed = self.config["seed"]
        corpus = self.config["corpus"]
        self.hours = corpus["hours"]
        folder = corpus["folder"].format(seed=self.seed, hours=format_hours(self.hours),
                                         size=corpus.get("size", "mini"))
        self.data_folder = self._absolute(folder)
        self.librispeech = self.data_folder / "LibriSpeech"
        self.out = self._absolute(self.config.get("output_folder", "results/ssl_study"))
        self.device = self.config.get("device", "cpu")
        self.evaluate = self.config.get("evaluate") or {}

    @staticmethod
    def _absolute(path):
        path = Path(path)
        return path if path.is_absolute() else REPO_ROOT / path

    def recipe(self, section):
        if section == "pretrain":
            return self._absolute(self.config["pretrain"].get("recipe") or "recipes/pretrain/train.py")
        settings = _need(self.evaluate, "finetune", "evaluate", dict)
        return self._absolute(settings.get("recipe") or "recipes/finetune/train.py")

    def run_folder(self, name):
        return self.out / "pretrain" / name

    def eval_folder(self, *parts):
        return self.out.joinpath("evaluate", *parts)

    def log_file(self, name):
        return self.out / "logs" / f"{name}.log"


# ---------------------------------------------------------------- recipe arguments


def _flag(key, value):
    """``--key=value`` with the value as YAML reads it back."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"--{key}={text}"


def _check_files(recipe, hparams, overrides_files, where):
    """A missing recipe, hparams file or override file is an error naming it."""
    recipe_dir = recipe.parent
    if not recipe.is_file():
        raise StudyError(f"{where}: recipe {recipe} does not exist")
    places = ", ".join(dict.fromkeys(str(p) for p in (Path.cwd(), recipe_dir, REPO_ROOT)))
    path = resolve_path(hparams, [recipe_dir])
    if not path.is_file():
        raise StudyError(f"{where}: hparams file {hparams!r} not found (looked in {places})")
    for name in overrides_files:
        if not resolve_path(name, [recipe_dir]).is_file():
            raise StudyError(f"{where}: override file {name!r} not found (looked in {places})")
    return path


def check_files(study, names, stages):
    """The recipe files the stages will need, before anything runs."""
    if "pretrain" in stages or "evaluate" in stages:
        for name in names:
            settings = run_settings(study.config, name)
            _check_files(study.recipe("pretrain"), settings["hparams"], settings["overrides_files"],
                         f"pretrain.runs.{name}")
    finetune = study.evaluate.get("finetune") or {}
    if "evaluate" in stages and finetune.get("enabled", True):
        _need(finetune, "hparams", "evaluate.finetune", str)
        _check_files(study.recipe("finetune"), finetune["hparams"], finetune.get("overrides_files") or [],
                     "evaluate.finetune")


def _effective(recipe, argv, skip_unknown_file_keys, where):
    """``(hparams file, {key: value})``: the recipe's own parsing of
    ``argv`` (type checks included), its YAML's plain values under the
    overrides."""
    try:
        hparams_file, _, overrides = parse_arguments(argv, recipe.parent,
                                                     skip_unknown_file_keys=skip_unknown_file_keys)
    except (ValueError, FileNotFoundError) as err:
        raise StudyError(f"{where}: {err}") from err
    def plain(value):  # yaml_defaults' wrapped values, unwrapped
        value = getattr(value, "value", value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    defaults = plain(yaml_defaults(hparams_file) or {})
    return hparams_file, merge_overrides(defaults, overrides)


class PretrainRun:
    """One pre-training run: its command line and what its folder holds."""

    def __init__(self, study, name, init_checkpoint=None):
        self.study, self.name = study, name
        self.settings = run_settings(study.config, name)
        self.recipe = study.recipe("pretrain")
        self.folder = study.run_folder(name)
        self.save = self.folder / "save"
        self.hparams = _check_files(self.recipe, self.settings["hparams"], self.settings["overrides_files"],
                                    f"pretrain.runs.{name}")
        self.init_from = self.settings.get("init_from")
        self.argv = self._argv(init_checkpoint)
        _, self.values = _effective(self.recipe, self.argv, True, f"pretrain.runs.{name}")
        self.max_updates = self.values.get("max_updates")
        if not isinstance(self.max_updates, int) or isinstance(self.max_updates, bool):
            raise StudyError(f"pretrain.runs.{name}: max_updates must be a plain int in the hparams file "
                             f"or the overrides, got {self.max_updates!r}")
        fractions = study.config["pretrain"].get("keep_fractions") or []
        if not self.values.get("keep_checkpoints_at") and fractions:
            keep = sorted({int(round(f * self.max_updates)) for f in fractions} - {0, self.max_updates})
            keep = [u for u in keep if 0 < u < self.max_updates]
            if keep:
                self.argv.append(_flag("keep_checkpoints_at", keep))
                self.values["keep_checkpoints_at"] = keep

    def _argv(self, init_checkpoint):
        study = self.study
        argv = [str(self.hparams)]
        for name in self.settings["overrides_files"]:
            argv += ["--overrides_file", str(resolve_path(name, [self.recipe.parent]).resolve())]
        argv += [f"--data_folder={study.librispeech}", f"--output_folder={self.folder}",
                 f"--seed={study.seed}", f"--device={study.device}"]
        if self.init_from is not None:
            if init_checkpoint is None:
                raise StudyError(f"run {self.name} starts from run {self.init_from}'s final checkpoint, "
                                 f"which does not exist yet: pre-train {self.init_from} first "
                                 f"(--stage pretrain{' --only ' + self.init_from})")
            argv.append(f"--init_from={init_checkpoint}")
        argv += [_flag(k, v) for k, v in self.settings["overrides"].items()]
        return argv

    def kept_updates(self):
        """The updates whose checkpoints the run keeps for good (its
        ``keep_checkpoints_at`` and multiples of ``keep_every_updates``)."""
        keep = set(self.values.get("keep_checkpoints_at") or [])
        every = self.values.get("keep_every_updates")
        if isinstance(every, int) and every > 0:
            keep |= set(range(every, self.max_updates + 1, every))
        return keep

    def checkpoints(self):
        """``[(folder, meta)]`` of the complete checkpoints, oldest first."""
        out = []
        for folder in checkpoints.complete_checkpoints(self.save):
            try:
                out.append((folder, checkpoints.read_meta(folder)))
            except ValueError:
                continue
        return sorted(out, key=lambda fm: (fm[1].get("update", 0), fm[1]["unixtime"]))

    def final_checkpoint(self):
        """The newest complete checkpoint at ``max_updates`` (or later), or None."""
        done = [(f, m) for f, m in self.checkpoints() if m.get("update", 0) >= self.max_updates]
        return done[-1] if done else None

    def to_evaluate(self, choices):
        """``[(folder, meta)]`` of the chosen checkpoints, by update:
        ``kept`` (marked keep and at one of ``kept_updates``: the recipe also
        marks the epoch-end checkpoint after a kept one) and ``final``."""
        chosen = {}
        if "kept" in choices:
            wanted = self.kept_updates()
            for folder, meta in self.checkpoints():
                if meta.get("keep") and meta.get("update") in wanted:
                    chosen[meta["update"]] = (folder, meta)
        final = self.final_checkpoint()
        if "final" in choices and final is not None:
            chosen[final[1]["update"]] = final
        return [chosen[u] for u in sorted(chosen)]


def final_of(study, name):
    """The final checkpoint folder of run ``name`` (None if unfinished)."""
    run = build_run(study, name)
    final = run.final_checkpoint()
    return final[0] if final else None


def build_run(study, name):
    origin = study.config["pretrain"]["runs"][name].get("init_from")
    init = None
    if origin is not None:
        init = final_of(study, origin)
    return PretrainRun(study, name, init)


def run_logged(argv, log_file, what):
    """Run ``[python] + argv`` from the repository root, appending its output
    to ``log_file``; a failure is a ``StudyError`` with the log's tail."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
        log.flush()
        code = subprocess.call([sys.executable, *argv], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        tail = "\n".join(log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise StudyError(f"{what} failed (exit status {code}); log {log_file}:\n{tail}")


# ---------------------------------------------------------------- results on disk


def write_json(path, value):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(value, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _canonical(value):
    return json.loads(json.dumps(value, default=str))


def is_done(path, key):
    """Whether ``path`` holds a result computed for ``key`` (its settings)."""
    done = read_json(path)
    if done is None:
        return False
    if done.get("key") != _canonical(key):
        say(f"{path.parent.name}/{path.name}: computed with other settings, recomputing")
        return False
    return True


def record_timing(study, stage, seconds, **extra):
    study.out.mkdir(parents=True, exist_ok=True)
    with open(study.out / "timings.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"stage": stage, "seconds": round(seconds, 2),
                                 "time": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}) + "\n")


# ---------------------------------------------------------------- stage: data


def stage_data(study):
    from data_prep.synthetic import CorpusFolderError, generate

    corpus = study.config["corpus"]
    corpora = list(corpus.get("corpora") or ["librispeech"])
    say(f"data: synthetic {', '.join(corpora)} ({format_hours(study.hours)} h of train-clean-100, "
        f"seed {study.seed}) in {study.data_folder}")
    try:
        results = generate(study.data_folder, seed=study.seed, size=corpus.get("size", "mini"),
                           corpora=corpora, hours_librispeech=study.hours, jobs=corpus.get("jobs"),
                           log=lambda *a: say("data: " + " ".join(str(x) for x in a)))
    except (CorpusFolderError, ValueError) as err:
        raise StudyError(f"data: {err}") from err
    for key, marker in results.items():
        say(f"data: {key}: {marker.get('hours', 0):.2f} h, {marker.get('recordings')} recordings, "
            f"{marker.get('speakers')} speakers")


def check_corpus(study):
    labels = study.librispeech / "LibriSpeech100_labels_split"
    if not (study.librispeech / "train-clean-100").is_dir() or not labels.is_dir():
        raise StudyError(f"corpus {study.data_folder} is missing or incomplete (no LibriSpeech/"
                         f"train-clean-100 or phone alignments): run --stage data first")


# ---------------------------------------------------------------- stage: pretrain


def stage_pretrain(study, names):
    check_corpus(study)
    for name in names:
        start = time.time()
        run = build_run(study, name)
        final = run.final_checkpoint()
        if final is not None:
            say(f"pretrain {name}: finished (update {final[1]['update']}, {final[0].name}), skipped")
            continue
        record = run.folder / "study_run.json"
        earlier = read_json(record)
        if earlier is not None and earlier.get("argv") != run.argv and run.checkpoints():
            changed = sorted(set(run.argv) ^ set(earlier.get("argv") or []))
            raise StudyError(f"pretrain {name}: {run.folder} holds checkpoints of a run with other settings "
                             f"({'; '.join(changed)}): give the study another --out, or delete that folder")
        write_json(record, {"argv": run.argv, "max_updates": run.max_updates})
        resumed = bool(run.checkpoints())
        say(f"pretrain {name}: {'resuming' if resumed else 'starting'} "
            f"({Path(run.settings['hparams']).name}, {run.max_updates} updates; "
            f"log {study.log_file('pretrain_' + name)})")
        run_logged([str(run.recipe), *run.argv], study.log_file(f"pretrain_{name}"),
                   f"pre-training run {name}")
        final = run.final_checkpoint()
        if final is None:
            raise StudyError(f"pretrain {name}: the recipe ended without a checkpoint at update "
                             f"{run.max_updates} in {run.save}")
        seconds = time.time() - start
        say(f"pretrain {name}: done in {seconds:.0f} s (update {final[1]['update']}, "
            f"{final[1].get('hours_seen', 0):.3f} h of audio seen)")
        record_timing(study, "pretrain_run", seconds, run=name, updates=run.max_updates,
                      resumed=resumed)


# ---------------------------------------------------------------- stage: evaluate


def load_probe_script():
    """``recipes/pretrain/probe.py`` as a module (not a package)."""
    path = REPO_ROOT / "recipes" / "pretrain" / "probe.py"
    spec = importlib.util.spec_from_file_location("ssl_study_pretrain_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Evaluator:
    """Loads the probe tasks once, on first use, and scores networks."""

    def __init__(self, study):
        self.study = study
        self.settings = study.evaluate
        self.phone_cache = {}
        self._phone_task = self._speaker_task = self._dev = None

    # settings that decide each kind of result
    def phone_settings(self):
        return {k: v for k, v in (self.settings.get("phone_probe") or {}).items() if k != "enabled"}

    def speaker_settings(self):
        return {k: v for k, v in (self.settings.get("speaker_probe") or {}).items() if k != "enabled"}

    def projection_settings(self):
        return {k: v for k, v in (self.settings.get("projection_std") or {}).items() if k != "enabled"}

    def corpus_key(self):
        return {"folder": str(self.study.data_folder), "seed": self.study.seed, "hours": self.study.hours}

    @property
    def phone_task(self):
        if self._phone_task is None:
            from speechbrain_ext.analysis.phone_probe import DEFAULT_ALIGNMENTS, load_phone_task

            s = self.phone_settings()
            start = time.time()
            self._phone_task = load_phone_task(
                self.study.librispeech / DEFAULT_ALIGNMENTS, self.study.librispeech,
                max_train_utterances=s.get("max_train_utterances"),
                max_test_utterances=s.get("max_test_utterances"),
                max_train_seconds=s.get("max_train_seconds"), max_test_seconds=s.get("max_test_seconds"),
                seed=s.get("seed", 0))
            summary = self._phone_task.summary()
            say(f"evaluate: phone task {summary['train_utterances']} train utterances "
                f"({summary['train_seconds']:.0f} s), {summary['test_utterances']} test "
                f"({summary['test_seconds']:.0f} s), {summary['num_classes']} classes "
                f"(read in {time.time() - start:.1f} s)")
        return self._phone_task

    @property
    def speaker_task(self):
        if self._speaker_task is None:
            s = self.speaker_settings()
            self._speaker_task = load_probe_script().speaker_task(
                self.study.librispeech, s.get("seconds", 3.0), s.get("max_speakers"),
                s.get("max_per_speaker"))
            say(f"evaluate: speaker task {len(self._speaker_task['train'])} train / "
                f"{len(self._speaker_task['test'])} test utterances, "
                f"{len({y for _, y in self._speaker_task['train']})} speakers")
        return self._speaker_task

    def dev_waveforms(self):
        if self._dev is None:
            import soundfile as sf
            import torch

            s = self.projection_settings()
            folder = self.study.librispeech / s.get("split", "dev-clean")
            files = sorted(folder.rglob("*.flac"))[: s.get("max_utterances", 24)]
            if not files:
                raise FileNotFoundError(f"{folder}: no .flac files for the projection statistics")
            self._dev = [torch.from_numpy(sf.read(str(f), dtype="float32")[0]) for f in files]
        return self._dev

    def phone(self, backbone):
        from speechbrain_ext.analysis.phone_probe import compare_phone_probe

        s = self.phone_settings()
        options = {k: s[k] for k in ("epochs", "lr", "batch_size", "hidden_size") if k in s}
        return compare_phone_probe(backbone, self.phone_task, tuple(s.get("random_seeds", (0, 1, 2))),
                                   s.get("layer", "weighted"), tuple(s.get("probes", ["linear"])),
                                   s.get("seed", 0), self.study.device, self.phone_cache, **options)

    def speaker_accuracy(self, backbone):
        from speechbrain_ext.analysis.probe import pooled_features, probe_accuracy

        task = self.speaker_task
        backbone = backbone.cpu().eval()
        feats = {split: pooled_features(backbone, [w for w, _ in task[split]]) for split in ("train", "test")}
        return probe_accuracy(feats["train"], [y for _, y in task["train"]],
                              feats["test"], [y for _, y in task["test"]],
                              self.speaker_settings().get("seed", 0))

    def speaker_random(self, backbone):
        from speechbrain_ext.analysis.probe import random_like

        seeds = list(self.speaker_settings().get("random_seeds", [0, 1, 2]))
        scores = [self.speaker_accuracy(random_like(backbone, s)) for s in seeds]
        return {"seeds": seeds, "accuracy": scores, "mean": sum(scores) / len(scores),
                "min": min(scores), "max": max(scores),
                "chance": 1.0 / len({y for _, y in self.speaker_task["train"]})}

    def projections(self, checkpoint, backbone):
        """Per-dimension std of the online and target projections, or None
        for a checkpoint without projection heads (contrastive runs)."""
        import torch

        from speechbrain_ext.analysis.study import projection_spread

        state = torch.load(checkpoint / "model.ckpt", map_location="cpu", weights_only=True)
        if "target_projection.weight" not in state:
            return None
        waves = self.dev_waveforms()
        out = {"utterances": len(waves)}
        online = copy.deepcopy(backbone).cpu()
        online.load_state_dict({k[len("online."):]: v for k, v in state.items() if k.startswith("online.")})
        target = copy.deepcopy(backbone).cpu()
        target.load_state_dict({k[len("target."):]: v for k, v in state.items() if k.startswith("target.")})
        for name, net in (("online", online), ("target", target)):
            out[name] = projection_spread(net, state[f"{name}_projection.weight"],
                                          state[f"{name}_projection.bias"], waves)
        return out


def evaluate_checkpoint(study, evaluator, name, folder, meta, backbone, enabled):
    """The probes of one checkpoint, each written to its own JSON file when
    done; returns how many were already there."""
    from speechbrain_ext.analysis.study import architecture_key

    update = meta.get("update")
    arch, _ = architecture_key(backbone)
    base = {"checkpoint": str(folder), "update": update, "corpus": evaluator.corpus_key()}
    kinds = {"phone": (enabled["phone_probe"], evaluator.phone_settings()),
             "speaker": (enabled["speaker_probe"], evaluator.speaker_settings()),
             "projection": (enabled["projection_std"], evaluator.projection_settings())}
    common = {"run": name, "update": update, "hours_seen": meta.get("hours_seen"), "architecture": arch,
              "checkpoint": str(folder)}
    skipped = 0
    for kind, (wanted, settings) in kinds.items():
        path, key = study.eval_folder(name, f"{kind}_update{update}.json"), {**base, "settings": settings}
        if not wanted:
            continue
        if is_done(path, key):
            skipped += 1
            continue
        start = time.time()
        if kind == "phone":
            result = evaluator.phone(backbone)
            first = next(iter(result["probes"].values()))
            best = first["random"]["best"] if first["random"] else float("nan")
            note = f"accuracy {first['pretrained']:.4f}, random best {best:.4f}, fbank {first['fbank']:.4f}"
        elif kind == "speaker":
            result = {"pretrained": evaluator.speaker_accuracy(backbone)}
            note = f"accuracy {result['pretrained']:.3f}"
        else:
            result = evaluator.projections(folder, backbone)
            note = ("no projection heads (not a non-contrastive run)" if result is None else
                    f"target std mean {result['target']['mean_std']:.4f}, "
                    f"min {result['target']['min_std']:.4f}")
        seconds = time.time() - start
        write_json(path, {"key": _canonical(key), **common, "result": result, "seconds": round(seconds, 2)})
        say(f"evaluate {name} update {update} {kind}: {note} ({seconds:.1f} s)")
        record_timing(study, f"evaluate_{kind}", seconds, run=name, update=update)
    return skipped


def evaluate_random(study, evaluator, backbone):
    """The speaker probe of random networks of ``backbone``'s shape, once
    per shape (the phone probe's are part of each phone result)."""
    from speechbrain_ext.analysis.study import architecture_key

    arch, shape = architecture_key(backbone)
    path = study.eval_folder("random", arch, "speaker.json")
    key = {"architecture": shape, "settings": evaluator.speaker_settings(), "corpus": evaluator.corpus_key()}
    if is_done(path, key):
        return
    start = time.time()
    result = evaluator.speaker_random(backbone)
    seconds = time.time() - start
    write_json(path, {"key": _canonical(key), "architecture": arch, "shape": shape, "result": result,
                      "seconds": round(seconds, 2)})
    say(f"evaluate random {arch} speaker: accuracy " + " ".join(f"{a:.3f}" for a in result["accuracy"])
        + f" ({seconds:.1f} s)")
    record_timing(study, "evaluate_speaker_random", seconds, architecture=arch)


def stage_evaluate(study, names):
    from speechbrain_ext.analysis.study import architecture_key
    from speechbrain_ext.interop.loading import load_backbone

    check_corpus(study)
    evaluator = Evaluator(study)
    choices = study.evaluate.get("checkpoints", list(CHECKPOINT_CHOICES))
    enabled = {kind: (study.evaluate.get(kind) or {}).get("enabled", True)
               for kind in ("phone_probe", "speaker_probe", "projection_std", "finetune")}
    finals, random_done = {}, set()
    for name in names:
        run = build_run(study, name)
        final = run.final_checkpoint()
        chosen = run.to_evaluate(choices)
        if final is None:
            say(f"evaluate {name}: pre-training not finished (no checkpoint at update {run.max_updates}); "
                f"{len(chosen)} kept checkpoint(s) evaluated, no fine-tuning")
        skipped = 0
        for folder, meta in chosen:
            backbone = load_backbone(folder)
            skipped += evaluate_checkpoint(study, evaluator, name, folder, meta, backbone, enabled)
            arch = architecture_key(backbone)[0]
            if enabled["speaker_probe"] and arch not in random_done:
                random_done.add(arch)
                evaluate_random(study, evaluator, backbone)
        if skipped:
            say(f"evaluate {name}: {skipped} probe result(s) already there, skipped")
        if final is not None:
            backbone = load_backbone(final[0])
            finals[name] = (final[0], final[1], architecture_key(backbone)[0], backbone)
    if enabled["finetune"]:
        finetune_all(study, finals)


def finetune_all(study, finals):
    """CTC fine-tuning from each run's final checkpoint and, once per
    architecture, from a random initialisation of it."""
    from speechbrain_ext.analysis.study import random_init_architecture

    settings = study.evaluate["finetune"]
    recipe = study.recipe("finetune")
    hparams = _check_files(recipe, settings["hparams"], settings.get("overrides_files") or [],
                           "evaluate.finetune")
    jobs = [(name, folder, arch, None) for name, (folder, _, arch, _) in finals.items()]
    if settings.get("random_init", True):
        seen = set()
        for name, (_, _, arch, backbone) in finals.items():
            if arch not in seen:
                seen.add(arch)
                jobs.append((f"random_{arch}", None, arch, random_init_architecture(backbone)))
    for label, checkpoint, arch, random_spec in jobs:
        out = study.out / "finetune" / label
        summary = (study.eval_folder("random", arch, "finetune.json") if checkpoint is None
                   else study.eval_folder(label, "finetune.json"))
        argv = [str(hparams)]
        for name in settings.get("overrides_files") or []:
            argv += ["--overrides_file", str(resolve_path(name, [recipe.parent]).resolve())]
        if random_spec is not None:
            spec_file = out / "study_random_init.yaml"
            text = yaml.safe_dump({"random_init_architecture": random_spec}, sort_keys=False)
            if not spec_file.is_file() or spec_file.read_text() != text:
                spec_file.parent.mkdir(parents=True, exist_ok=True)
                spec_file.write_text(text)
            argv += ["--overrides_file", str(spec_file)]
        argv += [f"--pretrained={checkpoint if checkpoint is not None else 'null'}",
                 f"--data_folder={study.librispeech}", f"--output_folder={out}",
                 f"--seed={study.seed}", f"--device={study.device}"]
        argv += [_flag(k, v) for k, v in (settings.get("overrides") or {}).items()]
        key = {"argv": argv, "random_init_architecture": random_spec}
        if is_done(summary, key):
            continue
        _, values = _effective(recipe, argv, False, f"evaluate.finetune ({label})")
        start = time.time()
        say(f"evaluate finetune {label}: {values.get('max_updates')} updates "
            f"(log {study.log_file('finetune_' + label)})")
        wer_file = out / "wer.json"
        record = out / "study_finetune.json"
        earlier = read_json(record)
        if earlier is not None and earlier.get("argv") != argv:
            # the recipe would resume the checkpoints of other settings
            say(f"evaluate finetune {label}: {out} was fine-tuned with other settings; starting over")
            shutil.rmtree(out / "save", ignore_errors=True)
        if wer_file.exists():
            wer_file.unlink()  # written at the end: not this run's
        write_json(record, {"argv": argv})
        run_logged([str(recipe), *argv], study.log_file(f"finetune_{label}"), f"fine-tuning {label}")
        wer = read_json(wer_file)
        if wer is None:
            raise StudyError(f"fine-tuning {label}: no {wer_file} written")
        seconds = time.time() - start
        write_json(summary, {"key": _canonical(key), "label": label, "architecture": arch,
                             "pretrained": str(checkpoint) if checkpoint else None,
                             "budget": values.get("max_updates"), "updates": wer.get("updates"), "wer": wer,
                             "seconds": round(seconds, 2)})
        split = settings.get("split") or values.get("tune_split")
        greedy = (wer.get(split) or {}).get("greedy", {})
        say(f"evaluate finetune {label}: {split} CER {greedy.get('CER', float('nan')):.1f} % "
            f"WER {greedy.get('WER', float('nan')):.1f} % ({seconds:.0f} s)")
        record_timing(study, "evaluate_finetune", seconds, job=label, updates=wer.get("updates"))


# ---------------------------------------------------------------- stage: report


def _int(value, hparams=None):
    """An int, or the int a plain ``!ref <key>`` of ``hparams`` names; else None."""
    if isinstance(value, str) and hparams and value.startswith("<") and value.endswith(">"):
        value = hparams.get(value[1:-1])
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def run_summary(study, name):
    """What the study knows of run ``name`` (pre-training, probes, fine-tuning)."""
    from speechbrain_ext.analysis.study import (last_train_stats, parse_train_log, read_plain_yaml,
                                                relative_reduction)

    settings = run_settings(study.config, name)
    folder = study.run_folder(name)
    record = read_json(folder / "study_run.json") or {}
    max_updates = record.get("max_updates")
    metas = []
    for ckpt in checkpoints.complete_checkpoints(folder / "save"):
        try:
            metas.append((ckpt, checkpoints.read_meta(ckpt)))
        except ValueError:
            pass
    metas.sort(key=lambda fm: fm[1].get("update", 0))
    last = metas[-1] if metas else None
    finished = bool(last and max_updates and last[1].get("update", 0) >= max_updates)
    records = parse_train_log(folder / "train_log.txt")
    hp = read_plain_yaml(folder / "hyperparams.yaml")
    summary = {"run": name, "hparams": settings["hparams"], "init_from": settings.get("init_from"),
               "status": "finished" if finished else ("partial" if metas else "not started"),
               "max_updates": max_updates, "missing": []}
    meta = last[1] if last else {}
    summary.update(updates=meta.get("update"), hours_seen=meta.get("hours_seen"),
                   cpu_hours=meta.get("cpu_hours"), gpu_hours=meta.get("gpu_hours"),
                   final_checkpoint=str(last[0]) if last else None)
    train = last_train_stats(records)
    model = hp.get("model") if isinstance(hp.get("model"), dict) else {}
    if "accuracy" in meta or "accuracy" in train:
        k = _int(model.get("num_negatives"), hp)
        groups, variables = _int(model.get("num_groups"), hp), _int(model.get("num_vars"), hp)
        size = groups * variables if groups and variables else None
        summary["objective"] = "contrastive"
        summary["contrastive"] = {
            "valid_accuracy": meta.get("accuracy"), "train_accuracy": train.get("accuracy"),
            "num_negatives": k, "chance": 1.0 / (k + 1) if k else None,
            "prob_perplexity": meta.get("prob_perplexity"), "code_perplexity": meta.get("code_perplexity"),
            "codebook_size": size, "num_groups": groups, "num_vars": variables,
            "prob_perplexity_fraction": meta.get("prob_perplexity") / size
            if size and meta.get("prob_perplexity") is not None else None,
            "code_perplexity_fraction": meta.get("code_perplexity") / size
            if size and meta.get("code_perplexity") is not None else None,
            "train_prob_perplexity": train.get("prob_perplexity"), "valid_loss": meta.get("loss")}
        if k is None:
            summary["missing"].append("num_negatives (K) not read from hyperparams.yaml: no chance level")
    elif "time_unrolled_loss" in meta or "time_unrolled_loss" in train:
        summary["objective"] = "non-contrastive"
        summary["noncontrastive"] = {
            "valid_L_U": meta.get("time_unrolled_loss"), "valid_L_M": meta.get("time_merged_loss"),
            "train_L_U": train.get("time_unrolled_loss"), "train_L_M": train.get("time_merged_loss"),
            "projection_std": None}
        summary["missing"].append("per-dimension std of the projections is not in train_log.txt "
                                  "(computed by the study from the checkpoint instead)")
    else:
        summary["objective"] = None
    offset = 0.0
    if settings.get("init_from"):
        origin = run_summary_hours(study, settings["init_from"])
        offset = origin or 0.0
    summary["hours_offset"] = offset
    # probes, per checkpoint
    curve = []
    for path in sorted(study.eval_folder(name).glob("phone_update*.json")):
        data = read_json(path)
        if not data or not data.get("result"):
            continue
        hours = data.get("hours_seen") or 0.0
        curve.append({"update": data["update"], "hours_seen": hours, "total_hours": hours + offset,
                      "architecture": data.get("architecture"), "checkpoint": data.get("checkpoint"),
                      "probes": {p: r for p, r in data["result"]["probes"].items()},
                      "chance": data["result"].get("chance")})
    curve.sort(key=lambda c: c["update"])
    summary["phone_probe_curve"] = curve
    final_update = meta.get("update") if finished else None
    final_phone = next((c for c in curve if c["update"] == final_update), curve[-1] if curve else None)
    summary["phone_probe"] = final_phone
    speaker = (read_json(study.eval_folder(name, f"speaker_update{final_update}.json"))
               if final_update else None)
    arch = final_phone["architecture"] if final_phone else None
    if speaker:
        arch = arch or speaker.get("architecture")
        random_speaker = read_json(study.eval_folder("random", speaker["architecture"], "speaker.json"))
        rs = random_speaker["result"] if random_speaker else None
        acc = speaker["result"]["pretrained"]
        summary["speaker_probe"] = {
            "pretrained": acc, "random": rs,
            "verdict": None if not rs else ("better than" if acc > rs["max"] else
                                            "worse than" if acc < rs["min"] else "within")}
    else:
        summary["speaker_probe"] = None
    projection = read_json(study.eval_folder(name, f"projection_update{final_update}.json")) \
        if final_update else None
    if projection and projection.get("result") and "noncontrastive" in summary:
        summary["noncontrastive"]["projection_std"] = {
            net: {k: v for k, v in projection["result"][net].items() if k != "std"}
            for net in ("online", "target")}
    summary["architecture"] = arch
    ft = read_json(study.eval_folder(name, "finetune.json"))
    rnd = read_json(study.eval_folder("random", arch, "finetune.json")) if arch else None
    split = (study.evaluate.get("finetune") or {}).get("split") or \
        (study.evaluate.get("finetune") or {}).get("overrides", {}).get("tune_split", "dev-clean")

    def rates(result):
        if not result:
            return None
        greedy = (result["wer"].get(split) or {}).get("greedy")
        return None if greedy is None else {"CER": greedy.get("CER"), "WER": greedy.get("WER"),
                                            "budget": result.get("budget"), "updates": result.get("updates")}

    checkpoint_rates, random_rates = rates(ft), rates(rnd)
    if finished:  # results of an earlier final checkpoint (the run was redone): say so
        current = str(last[0])
        stale = [kind for kind, data in (("phone probe", final_phone), ("speaker probe", speaker),
                                         ("projection std", projection))
                 if data and data.get("checkpoint") not in (None, current)]
        if ft and ft.get("pretrained") != current:
            stale.append("fine-tuning")
        if stale:
            summary["missing"].append(f"{name}: {', '.join(stale)} of an earlier final checkpoint "
                                      "(rerun --stage evaluate)")
    summary["finetune"] = {
        "split": split, "checkpoint": checkpoint_rates, "random_init": random_rates,
        "relative_cer_reduction": relative_reduction(random_rates and random_rates["CER"],
                                                     checkpoint_rates and checkpoint_rates["CER"]),
        "relative_wer_reduction": relative_reduction(random_rates and random_rates["WER"],
                                                     checkpoint_rates and checkpoint_rates["WER"])}
    summary["curve_records"] = records
    return summary


def run_summary_hours(study, name):
    """Hours of audio the final checkpoint of run ``name`` saw (None if none)."""
    latest = None
    for ckpt in checkpoints.complete_checkpoints(study.run_folder(name) / "save"):
        try:
            meta = checkpoints.read_meta(ckpt)
        except ValueError:
            continue
        if latest is None or meta.get("update", 0) > latest.get("update", 0):
            latest = meta
    return latest.get("hours_seen") if latest else None


def stage_report(study):
    from speechbrain_ext.analysis.study import (BOOKKEEPING, curve_series, phone_probe_points,
                                                plot_phone_probe, plot_pretraining_curves, study_markdown)

    settings = study.config.get("report") or {}
    report = study.out / settings.get("folder", "report")
    report.mkdir(parents=True, exist_ok=True)
    probes = list((study.evaluate.get("phone_probe") or {}).get("probes", ["linear"]))
    summaries = [run_summary(study, name) for name in study.order]
    exclude = set(BOOKKEEPING) | set(settings.get("curve_exclude") or [])
    curves = {s["run"]: curve_series(s.pop("curve_records"), exclude=exclude, hours_offset=s["hours_offset"])
              for s in summaries}
    files = {}
    if plot_pretraining_curves({run: c for run, c in curves.items() if c}, report / "pretraining_curves.png",
                               title="pre-training curves (hours of audio seen from random init)"):
        files["pretraining_curves"] = report / "pretraining_curves.png"
    points, baselines = phone_probe_points(summaries, probes)
    if plot_phone_probe(points, baselines, report / "phone_probe_vs_hours.png", probes):
        files["phone_probe_vs_hours"] = report / "phone_probe_vs_hours.png"
    title = (f"SSL evidence study (seed {study.seed}, {format_hours(study.hours)} h synthetic "
             f"train-clean-100: {study.data_folder})")
    markdown = study_markdown(summaries, probes[0], title, [p.name for p in files.values()])
    (report / "study.md").write_text(markdown)
    write_json(report / "study.json", {"seed": study.seed, "hours": study.hours,
                                       "data_folder": str(study.data_folder), "runs": summaries,
                                       "figures": {k: str(v) for k, v in files.items()}})
    say(f"report: table {report / 'study.md'}")
    say(f"report: JSON {report / 'study.json'}")
    for path in files.values():
        say(f"report: figure {path}")
    return report


# ---------------------------------------------------------------- command line


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python benchmarks/ssl_study.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="the study's settings (YAML)")
    parser.add_argument("--overrides_file", action="append", default=[],
                        help="YAML merged on top of the config (repeatable)")
    parser.add_argument("--seed", type=int, help="the study seed (corpus, pre-training, fine-tuning)")
    parser.add_argument("--stage", choices=[*STAGES, "all"], default="all")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="restrict pretrain / evaluate to these runs")
    parser.add_argument("--out", help="output folder (default: the config's output_folder)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    total = time.time()
    try:
        out = Path(args.out).resolve() if args.out else None  # relative to the current folder
        study = Study(load_config(args.config, args.overrides_file), seed=args.seed, out=out)
        names = select_runs(study.order, args.only)
        stages = STAGES if args.stage == "all" else (args.stage,)
        check_files(study, names, stages)
        say(f"seed {study.seed}, corpus {study.data_folder}, output {study.out}, runs {', '.join(names)}")
        for stage in stages:
            start = time.time()
            if stage == "data":
                stage_data(study)
            elif stage == "pretrain":
                stage_pretrain(study, names)
            elif stage == "evaluate":
                stage_evaluate(study, names)
            else:
                stage_report(study)
            seconds = time.time() - start
            say(f"stage {stage}: {seconds:.1f} s")
            record_timing(study, stage, seconds, runs=names if stage in ("pretrain", "evaluate") else None)
    except (StudyError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    say(f"total: {time.time() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
