#!/usr/bin/env python3
"""Paper 001's batch-size study, end to end, at any scale (micro by default).

Settings: ``benchmarks/batch_size_study.yaml`` (``--config``). Stages, each
resuming what is done (``--stages``, default all):

- ``pretrain``: one run of ``recipes/pretrain/train.py`` per batch size
  (``runs``), every run on the same upper-bound ``hours_seen`` (so 4x the
  updates for a 4x smaller batch), ``checkpoints`` kept checkpoints each,
  one cyclic-LR cycle per checkpoint, and one run per learning-rate
  heuristic of ``lr_heuristics`` (Table 1's scan; per batch size the run
  with the lowest validation loss is the one analysed, as the paper
  settles on it); a run
  whose command line changed starts again, an interrupted one resumes from
  its checkpoints (the recipe's own resume);
- ``analyse``: for every kept checkpoint (and the shared initial weights,
  update 0) of every run: the gradient standard deviation over fixed update
  batches (Fig. 3, ``speechbrain_ext.analysis.gradient_variance``), the
  validation accuracy / per-codebook perplexity / similarity (Fig. 1 D-I,
  ``speechbrain_ext.analysis.codebook``), and a frame phone probe on frozen
  features (``speechbrain_ext.analysis.phone_probe``) standing in for
  Fig. 4's WER; each result is cached per checkpoint with its settings.
  Off by default (their cost), recipes run on kept checkpoints, each once
  per command line (:func:`run_on_checkpoint`): ``finetune``, Fig. 4's CTC
  fine-tuning (``recipes/finetune/train.py``), and ``superb``, Fig. 5 /
  Table 5's frozen-upstream downstream tasks
  (``recipes/downstream/run_suite.py --frozen``);
- ``report``: Table 2 (``table2.csv``), the CSVs and figures
  (``gradient_std.{csv,png}``, ``codebook.{csv,png}``,
  ``probe_vs_hours.{csv,png}``; with those analyses on,
  ``finetune_vs_hours.{csv,png}`` and ``superb_vs_updates.{csv,png}``) and
  ``report.md`` with what they show.

Layout of ``--out`` (default ``output_folder``)::

    runs/<run>/          the recipe's output folder (save/, train_log.txt)
    logs/pretrain_<run>.log
    analysis/<run>_<update>.json   cached analyses of one checkpoint
    analysis/<run>_<update>_{finetune,superb}.json   cached recipe scores
    finetune/<run>_<update>/, superb/<run>_<update>/  those recipes' output folders
    logs/{finetune,superb}_<run>_<update>.log
    report/              the CSVs, figures and report.md
    timings.json         seconds per stage and run

    python benchmarks/batch_size_study.py [--config F.yaml] [--out DIR] [--stages pretrain analyse report]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from speechbrain_ext.training.lr_heuristics import heuristic_names, learning_rate  # noqa: E402
DEFAULT_CONFIG = REPO_ROOT / "benchmarks" / "batch_size_study.yaml"
RECIPE = REPO_ROOT / "recipes" / "pretrain" / "train.py"
STAGES = ("pretrain", "analyse", "report")
SAMPLE_RATE = 16000
KEYS = {"output_folder": str, "data_folder": str, "hparams": str, "overrides_files": list,
        "overrides": dict, "hours_seen": (int, float), "checkpoints": int,
        "gpu_batch_seconds": (int, float), "runs": dict, "lr_heuristics": list,
        "gradient_variance": dict, "codebook": dict, "probe": dict, "finetune": dict, "superb": dict}
FINETUNE_KEYS = ("enabled", "recipe", "hparams", "overrides_files", "overrides", "split", "metric",
                 "checkpoints", "runs")
SUPERB_KEYS = ("enabled", "recipe", "tasks", "micro", "corpora_root", "split", "overrides",
               "checkpoints", "runs")
RUN_KEYS = {"seconds_per_update": (int, float), "grad_accumulation_factor": int, "lr_heuristics": list}


class StudyError(Exception):
    """A bad setting or a failed stage, with what to do."""


def say(message):
    print(f"[batch_size_study] {message}", flush=True)


def load_config(path):
    """The settings of ``path``, checked (:func:`check_config`)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise StudyError(f"no config file {path}")
    config = yaml.safe_load(path.read_text())
    check_config(config, path)
    return config


def check_config(config, where):
    """Every key known and of its type; each run's updates a whole number
    per checkpoint; each update a whole number of GPU batches that fit.
    A failure is a ``StudyError`` naming the file and the key."""
    if not isinstance(config, dict):
        raise StudyError(f"{where}: expected a mapping of settings")
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    missing = [k for k in KEYS if k not in config]
    if missing:
        raise StudyError(f"{where}: missing key(s) {', '.join(missing)}")
    for key, kind in KEYS.items():
        if not isinstance(config[key], kind) or isinstance(config[key], bool):
            raise StudyError(f"{where}: {key} must be {getattr(kind, '__name__', 'a number')}, "
                             f"got {config[key]!r}")
    if len(config["runs"]) < 2:
        raise StudyError(f"{where}: runs: a study compares at least two batch sizes")
    for name, run in config["runs"].items():
        for key in run:
            if key not in RUN_KEYS:
                raise StudyError(f"{where}: runs.{name}.{key} is not a run setting; known: "
                                 f"{', '.join(RUN_KEYS)}")
        for key in ("seconds_per_update", "grad_accumulation_factor"):
            if not isinstance(run.get(key), RUN_KEYS[key]):
                raise StudyError(f"{where}: runs.{name}.{key} must be set (a number)")
        plan_run(config, name)  # raises on updates that do not divide
        heuristics = heuristics_of(config, name)
        if not heuristics or len(set(heuristics)) != len(heuristics):
            raise StudyError(f"{where}: runs.{name}: lr_heuristics must be distinct names, got {heuristics!r}")
        for heuristic in heuristics:
            if str(heuristic).strip().lower() not in heuristic_names():
                raise StudyError(f"{where}: lr_heuristics of runs.{name}: {heuristic!r} is not a "
                                 f"heuristic; known: {', '.join(heuristic_names())}")
    for block, known in (("finetune", FINETUNE_KEYS), ("superb", SUPERB_KEYS)):
        check_checkpoint_analysis(config, block, known, where)
    superb = config["superb"]
    if superb.get("enabled"):
        from speechbrain_ext.downstream.results import TASKS

        tasks = superb["tasks"]
        if not isinstance(tasks, list) or not tasks or len(set(tasks)) != len(tasks):
            raise StudyError(f"{where}: superb.tasks must be a list of distinct task names, got {tasks!r}")
        for task in tasks:
            if task not in TASKS:
                raise StudyError(f"{where}: superb.tasks: {task!r} is not a task of "
                                 f"recipes/downstream/run_suite.py; known: {', '.join(TASKS)}")
        if not isinstance(superb["overrides"] or {}, dict):
            raise StudyError(f"{where}: superb.overrides must be a mapping of recipe keys, "
                             f"got {superb['overrides']!r}")


def check_checkpoint_analysis(config, block, known, where):
    """The ``finetune`` / ``superb`` block (an analysis that runs a recipe per
    kept checkpoint): known keys; when enabled, all of them, ``checkpoints``
    'all' or 'last' and ``runs`` null or names of ``runs``."""
    settings = config[block]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise StudyError(f"{where}: {block}: unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}")
    if settings.get("enabled"):
        missing = [k for k in known if k not in settings]
        if missing:
            raise StudyError(f"{where}: {block} is enabled but lacks {', '.join(missing)}")
        if settings["checkpoints"] not in ("all", "last"):
            raise StudyError(f"{where}: {block}.checkpoints must be 'all' or 'last', "
                             f"got {settings['checkpoints']!r}")
        if settings["runs"] is not None and not isinstance(settings["runs"], list):
            raise StudyError(f"{where}: {block}.runs must be null or a list of run names, "
                             f"got {settings['runs']!r}")
        for name in settings["runs"] or []:
            if name not in config["runs"]:
                raise StudyError(f"{where}: {block}.runs names {name!r}, not one of runs "
                                 f"({', '.join(config['runs'])})")


def heuristics_of(config, name):
    """The heuristics batch size ``name`` is trained with (its own list, or the study's)."""
    return list(config["runs"][name].get("lr_heuristics", config["lr_heuristics"]))


def plan_run(config, name):
    """``{updates, every, seconds_per_update, grad_accumulation_factor,
    temperature_decay}`` of batch size ``name``.

    >>> config = {"hours_seen": 0.1, "checkpoints": 3, "gpu_batch_seconds": 10.0,
    ...           "runs": {"10s": {"seconds_per_update": 10.0, "grad_accumulation_factor": 1}}}
    >>> plan = plan_run(config, "10s")
    >>> plan["updates"], plan["every"]
    (36, 12)
    """
    run = config["runs"][name]
    seconds, accumulation = float(run["seconds_per_update"]), int(run["grad_accumulation_factor"])
    exact = config["hours_seen"] * 3600 / seconds
    updates = round(exact)
    checkpoints = config["checkpoints"]
    if updates < 1 or abs(exact - updates) > 1e-6 or updates % checkpoints:
        raise StudyError(f"runs.{name}: hours_seen={config['hours_seen']} at {seconds:g} s per update is "
                         f"{exact:g} updates, not a whole number of updates for each of "
                         f"checkpoints={checkpoints} checkpoints")
    if updates // checkpoints < 2:
        raise StudyError(f"runs.{name}: {updates} updates leave fewer than 2 per cyclic-LR cycle "
                         f"(checkpoints={checkpoints}): raise hours_seen")
    if abs(seconds - accumulation * config["gpu_batch_seconds"]) > 1e-9:
        raise StudyError(f"runs.{name}: seconds_per_update={seconds:g} is not grad_accumulation_factor="
                         f"{accumulation} x gpu_batch_seconds={config['gpu_batch_seconds']:g} (one process)")
    # Gumbel temperature 2 -> 0.5 within 70 % of the run (fairseq: 277k of 400k)
    decay = 0.25 ** (1 / max(1.0, 0.7 * updates))
    return {"updates": updates, "every": updates // checkpoints, "seconds_per_update": seconds,
            "grad_accumulation_factor": accumulation, "temperature_decay": decay}


def _flag(key, value):
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    return f"--{key}={text}"


def run_label(name, heuristic):
    return f"{name}_{heuristic}"


def recipe_argv(config, name, out, heuristic):
    """The recipe's command line for batch size ``name`` with ``heuristic``
    (paths from the repository root)."""
    plan = plan_run(config, name)
    argv = [str(RECIPE), str(REPO_ROOT / config["hparams"])]
    for path in config["overrides_files"]:
        argv += ["--overrides_file", str(REPO_ROOT / path)]
    settings = {
        "data_folder": str((REPO_ROOT / config["data_folder"]).resolve()),
        "output_folder": str(Path(out) / "runs" / run_label(name, heuristic)),
        "seconds_per_update": plan["seconds_per_update"], "gpus": 1,
        "grad_accumulation_factor": plan["grad_accumulation_factor"],
        "max_samples_per_gpu": int(round(config["gpu_batch_seconds"] * SAMPLE_RATE)),
        "max_sample_size": int(round(config["gpu_batch_seconds"] * SAMPLE_RATE)),
        "lr_heuristic": heuristic, "max_updates": plan["updates"],
        "lr_cycles": config["checkpoints"], "valid_interval_updates": plan["every"],
        "keep_every_updates": plan["every"], "checkpoints_to_keep": 1,
        "quantizer_temperature": [2.0, 0.5, round(plan["temperature_decay"], 8)],
        **config["overrides"]}
    argv += [_flag(k, v) for k, v in settings.items()] + ["--device=cpu"]
    return argv


def read_json(path, default=None):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


def write_json(path, value):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    tmp.replace(path)  # never a half-written result


def record_timing(out, key, seconds):
    timings = read_json(Path(out) / "timings.json", {})
    timings[key] = round(seconds, 1)
    write_json(Path(out) / "timings.json", timings)


# ------------------------------------------------------------------ pretrain


def stage_pretrain(config, out):
    for name in config["runs"]:
        for heuristic in heuristics_of(config, name):
            pretrain_run(config, out, name, heuristic)


def pretrain_run(config, out, batch, heuristic):
    """One pre-training run (skipped when done with the same command line)."""
    name = run_label(batch, heuristic)
    argv = recipe_argv(config, batch, out, heuristic)
    marker = Path(out) / "runs" / name / "study_done.json"
    if read_json(marker, {}).get("argv") == argv:
        say(f"pretrain {name}: done before")
        return
    previous = Path(out) / "runs" / name / "study_argv.json"
    if previous.is_file() and read_json(previous) != argv:
        raise StudyError(f"{previous.parent} was started with other settings; remove it to rerun")
    write_json(previous, argv)
    log = Path(out) / "logs" / f"pretrain_{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    plan = plan_run(config, batch)
    say(f"pretrain {name}: {plan['updates']} updates of {plan['seconds_per_update']:g} s "
        f"(log: {log})")
    start = time.time()
    with open(log, "a") as handle:
        code = subprocess.call([sys.executable, *argv], cwd=REPO_ROOT, stdout=handle,
                               stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if code:
        raise StudyError(f"pretrain {name} failed (exit {code}); see {log}")
    record_timing(out, f"pretrain_{name}", time.time() - start)
    write_json(marker, {"argv": argv})


# ------------------------------------------------------------------- analyse


def best_heuristic(losses):
    """The heuristic whose run reached the lowest validation loss
    (``{heuristic: [validation losses]}``; a diverged run, with no finite
    loss, never wins; paper 001 Section 4.1: "settle on a run with the
    lowest overall validation loss"). None when every run diverged.

    >>> best_heuristic({"lin": [5.0, 4.2], "sub": [4.9, 4.0], "const": [float("nan")]})
    'sub'
    """
    best = {h: min((v for v in values if v == v and abs(v) != float("inf")), default=None)
            for h, values in losses.items()}
    finite = {h: v for h, v in best.items() if v is not None}
    return min(finite, key=finite.get) if finite else None


def validation_losses(config, out, name):
    """``{heuristic: [validation loss of each kept checkpoint]}`` of batch size ``name``."""
    return {h: [float(m.get("loss", float("nan"))) for _, _, m in
                kept_checkpoints(Path(out) / "runs" / run_label(name, h) / "save")]
            for h in heuristics_of(config, name)}


def chosen_heuristic(config, out, name):
    for heuristic in heuristics_of(config, name):
        if not read_json(Path(out) / "runs" / run_label(name, heuristic) / "study_done.json"):
            raise StudyError(f"run {run_label(name, heuristic)} has not finished pre-training; run the "
                             "pretrain stage first")
    heuristic = best_heuristic(validation_losses(config, out, name))
    if heuristic is None:
        raise StudyError(f"every run of batch size {name} diverged (no finite validation loss)")
    return heuristic


def load_recipe():
    import importlib.util

    spec = importlib.util.spec_from_file_location("batch_size_study_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_hparams(argv):
    """The run's hparams as the recipe loads them (the model with the run's
    initial weights: the YAML seeds torch before building it)."""
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_ext.training.recipe_cli import parse_arguments

    hparams_file, run_opts, overrides = parse_arguments(argv[1:-1], RECIPE.parent,
                                                        skip_unknown_file_keys=True)
    with open(hparams_file) as f:
        hparams = load_hyperpyyaml(f, overrides)
    # a run option on the command line wins over the YAML's, as in the recipe's Brain
    if "grad_accumulation_factor" in getattr(run_opts, "overridden_args", ()):
        hparams["grad_accumulation_factor"] = run_opts["grad_accumulation_factor"]
    return hparams


def kept_checkpoints(save_folder):
    """``[(update, folder, meta)]`` of the checkpoints kept for good, oldest first."""
    import yaml

    from speechbrain_ext.io.checkpoints import complete_checkpoints

    kept = []
    for folder in complete_checkpoints(save_folder):
        meta = yaml.safe_load((Path(folder) / "CKPT.yaml").read_text())
        if meta.get("keep"):
            kept.append((int(meta["update"]), Path(folder), meta))
    return sorted(kept, key=lambda k: k[0])


def read_manifest(path, data_folder):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["wav"] = row["wav"].replace("$data_root", str(data_folder))
    return rows


def padded(recipe, rows):
    """``(wav [B, S], wav_lens [B])`` of manifest ``rows``, zero-padded."""
    import torch

    waves = [recipe.read_utterance(r["wav"], r["duration"]) for r in rows]
    longest = max(len(w) for w in waves)
    wav = torch.zeros(len(waves), longest)
    for i, w in enumerate(waves):
        wav[i, :len(w)] = w
    return wav, torch.tensor([len(w) / longest for w in waves])


class RunAnalysis:
    """The fixed batches and the model of one run (built once)."""

    def __init__(self, config, name, out, recipe, heuristic):
        from speechbrain_ext.analysis.gradient_variance import group_into_updates
        from speechbrain_ext.training.paper001_batching import Paper001BatchSampler

        self.name, self.config = name, config
        self.argv = recipe_argv(config, name, out, heuristic)
        self.hparams = hp = run_hparams(self.argv)
        self.model = hp["model"]
        self.initial = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        data = hp["data_folder"]
        train = read_manifest(recipe.manifest_path(hp, "train"), data)
        valid = read_manifest(recipe.manifest_path(hp, "valid"), data)
        # what the recipe trains and validates on: whole utterances up to max_sample_size
        fits = lambda r: hp["min_sample_size"] <= float(r["duration"]) * SAMPLE_RATE <= hp["max_sample_size"]
        train, valid = [r for r in train if fits(r)], [r for r in valid if fits(r)]
        gv = config["gradient_variance"]
        # independently drawn update batches (their own seed), the paper's sampler
        sampler = Paper001BatchSampler([float(r["duration"]) for r in train],
                                       max_samples=hp["max_samples_per_gpu"], bin_size=hp["bin_size"],
                                       queue_size=hp["queue_size"],
                                       max_length_difference=hp["max_length_difference"],
                                       seed=gv.get("seed", 0))
        gpu_batches = [[train[i] for i in b] for b in sampler]
        updates = group_into_updates(gpu_batches, hp["grad_accumulation_factor"], gv.get("batches", 10))
        self.gradient_batches = [[padded(recipe, b) for b in update] for update in updates]
        cb = config["codebook"]
        size = cb.get("batch_size", 8)
        chunks = [valid[i:i + size] for i in range(0, len(valid), size)]
        if cb.get("max_batches"):
            chunks = chunks[:cb["max_batches"]]
        self.valid_batches = [padded(recipe, c) for c in chunks]

    def load(self, update, folder):
        import torch

        state = self.initial if folder is None else torch.load(
            Path(folder) / "model.ckpt", map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.set_num_updates(update)
        return self.model


class Prober:
    def __init__(self, config):
        self.settings = config["probe"]
        self.data_folder = REPO_ROOT / config["data_folder"]
        self._task, self.cache = None, {}

    def task(self):
        if self._task is None:
            from speechbrain_ext.analysis.phone_probe import DEFAULT_ALIGNMENTS, load_phone_task

            s = self.settings
            self._task = load_phone_task(self.data_folder / DEFAULT_ALIGNMENTS, self.data_folder,
                                         max_train_seconds=s.get("max_train_seconds"),
                                         max_test_seconds=s.get("max_test_seconds"), seed=s.get("seed", 0))
        return self._task

    def score(self, backbone, with_random):
        from speechbrain_ext.analysis.phone_probe import compare_phone_probe

        s = self.settings
        options = {k: s[k] for k in ("epochs", "lr", "batch_size") if k in s}
        result = compare_phone_probe(backbone, self.task(),
                                     tuple(s.get("random_seeds", ())) if with_random else (),
                                     s.get("layer", "weighted"), "linear", s.get("seed", 0),
                                     cache=self.cache, **options)
        probe = result["probes"]["linear"]
        return {"phone_accuracy": probe["pretrained"], "fbank_accuracy": probe["fbank"],
                "random_accuracy": (probe["random"] or {}).get("best"), "chance": result["chance"]}


def pending(config, argv, cache_path):
    """The analyses of a checkpoint still to do (none cached with these settings)."""
    result = read_json(cache_path, {})
    done = result.get("settings", {}) if result.get("argv") == argv else {}
    names = ["gradient_variance", "codebook"] + (["probe"] if config["probe"].get("enabled", True) else [])
    return [name for name in names if done.get(name) != config[name]]


def analyse_checkpoint(analysis, prober, update, folder, cache_path):
    """Every analysis of one checkpoint, cached: an analysis is redone when
    its settings changed, all of them when the run's command line did."""
    import copy

    from speechbrain_ext.analysis.codebook import validation_statistics
    from speechbrain_ext.analysis.gradient_variance import contrastive_loss, gradient_std

    config = analysis.config
    result = read_json(cache_path, {})
    if result.get("argv") != analysis.argv:
        result = {"argv": analysis.argv}
    done = result.setdefault("settings", {})  # analysis -> the settings it ran with
    model = None
    if done.get("gradient_variance") != config["gradient_variance"]:
        model = analysis.load(update, folder)
        start = time.time()
        # the loss as trained (its own reduction); each batch is one update's GPU batches
        g = gradient_std(model, contrastive_loss(), analysis.gradient_batches, accumulate=True,
                         ddof=config["gradient_variance"].get("ddof", 1))
        result.update(gradient_std=g.value, mean_abs_gradient=g.mean_abs_gradient,
                      gradient_seconds=round(time.time() - start, 1))
        done["gradient_variance"] = config["gradient_variance"]
    if done.get("codebook") != config["codebook"]:
        model = model or analysis.load(update, folder)
        result["codebook_stats"] = validation_statistics(model, analysis.valid_batches)
        done["codebook"] = config["codebook"]
    if config["probe"].get("enabled", True) and done.get("probe") != config["probe"]:
        model = model or analysis.load(update, folder)
        start = time.time()
        backbone = copy.deepcopy(model.backbone).eval()
        result["probe_stats"] = prober.score(backbone, with_random=update == 0)
        result["probe_seconds"] = round(time.time() - start, 1)
        done["probe"] = config["probe"]
    write_json(cache_path, result)
    return result


def checkpoint_folder(out, kind, name, update):
    """``out/<kind>/<name>_<update>``: what a recipe run on a kept checkpoint writes."""
    return Path(out) / kind / f"{name}_{update}"


def run_on_checkpoint(out, kind, name, update, argv, read_scores):
    """Run ``python argv`` on kept checkpoint ``update`` of run ``name``, once
    per command line: the analyses that are recipes of their own
    (``finetune``, ``superb``).

    ``argv`` writes into :func:`checkpoint_folder` (``out/<kind>/<name>_<update>``),
    its output goes to ``out/logs/<kind>_<name>_<update>.log``;
    ``read_scores()`` returns the run's scores (a dict), raising a
    ``StudyError`` naming the file when they are missing. The scores, the
    argv and ``<kind>_seconds`` are cached in
    ``out/analysis/<name>_<update>_<kind>.json`` and returned: the same argv
    is not run again, an interrupted run is resumed (the recipe's own
    checkpoints), and a changed argv starts its folder afresh (a recipe
    would otherwise resume the old settings' checkpoints). A failure is a
    ``StudyError`` naming the log."""
    import shutil

    cache = Path(out) / "analysis" / f"{name}_{update}_{kind}.json"
    cached = read_json(cache, {})
    if cached.get("argv") == argv:
        return cached
    target = checkpoint_folder(out, kind, name, update)
    record = target / f"study_{kind}.json"
    if record.is_file() and read_json(record) != argv:
        say(f"{kind} {name} @ {update}: the command changed; removing {target}")
        shutil.rmtree(target)
    write_json(record, argv)
    log = Path(out) / "logs" / f"{kind}_{name}_{update}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"{kind} {name} @ {update} (log: {log})")
    start = time.time()
    with open(log, "a") as handle:
        handle.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')}: {sys.executable} {' '.join(argv)}\n")
        handle.flush()
        code = subprocess.call([sys.executable, *argv], cwd=REPO_ROOT, stdout=handle,
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if code:
        raise StudyError(f"{kind} of {name} @ {update} failed (exit {code}); see {log}")
    try:
        scores = read_scores()
    except StudyError as err:
        raise StudyError(f"{kind} of {name} @ {update}: {err}; see {log}") from None
    result = {"argv": argv, **scores, f"{kind}_seconds": round(time.time() - start, 1)}
    write_json(cache, result)
    return result


def finetune_checkpoint(config, out, name, update, folder):
    """Fig. 4: CTC fine-tuning of one kept checkpoint with the study's label
    setting (``finetune``), its ``metric`` (WER, %) on ``split``, cached
    (:func:`run_on_checkpoint`): ``{"argv", "finetune_metric", "finetune_seconds"}``."""
    settings = config["finetune"]
    target = checkpoint_folder(out, "finetune", name, update)
    argv = [str(REPO_ROOT / settings["recipe"]), str(REPO_ROOT / settings["hparams"])]
    for path in settings["overrides_files"]:
        argv += ["--overrides_file", str(REPO_ROOT / path)]
    argv += [f"--pretrained={folder}", f"--output_folder={target}", "--device=cpu"]
    argv += [_flag(k, v) for k, v in (settings["overrides"] or {}).items()]

    def read_scores():
        path = target / "wer.json"
        wer = read_json(path)
        if wer is None:
            raise StudyError(f"{path} was not written")
        scores = (wer.get(settings["split"]) or {}).get("greedy") or {}
        if settings["metric"] not in scores:
            raise StudyError(f"{path}: no greedy {settings['metric']} for split "
                             f"{settings['split']!r} (finetune.split / finetune.metric)")
        return {"finetune_metric": scores[settings["metric"]]}

    return run_on_checkpoint(out, "finetune", name, update, argv, read_scores)


def superb_argv(config, out, name, update, folder):
    """``recipes/downstream/run_suite.py``'s command line for kept checkpoint
    ``folder``: frozen upstream (weighted sum of the layers), ``superb.tasks``,
    its own output root (``out/superb/<name>_<update>``: the downstream
    recipes resume from their output folders, so checkpoints never share
    one) and the label ``<name>@<update>``; ``superb.overrides`` go to every
    task's recipe (after ``--``)."""
    settings = config["superb"]
    argv = [str(REPO_ROOT / settings["recipe"]), str(folder), "--frozen"]
    argv += ["--micro"] if settings["micro"] else []
    argv += ["--tasks", *settings["tasks"],
             "--corpora_root", str((REPO_ROOT / settings["corpora_root"]).resolve()),
             "--output_root", str(checkpoint_folder(out, "superb", name, update)),
             "--label", f"{name}@{update}"]
    overrides = [_flag(k, v) for k, v in (settings["overrides"] or {}).items()]
    return argv + (["--", *overrides] if overrides else [])


def superb_checkpoint(config, out, name, update, folder):
    """Fig. 5 / Table 5: the frozen-upstream downstream tasks (``superb``) of
    one kept checkpoint through ``recipes/downstream/run_suite.py``, cached
    (:func:`run_on_checkpoint`). Returns ``{"argv", "superb_seconds",
    "superb": {task: {"metric", "value" (percent), "higher_is_better",
    "chance" (percent or None), "steps"}}}``: per task its main metric
    (``speechbrain_ext.downstream.results.TASKS``) on ``superb.split``, the
    latest record of ``<output_root>/results.jsonl`` with the run's label."""
    from speechbrain_ext.downstream.results import TASKS, read_results

    settings = config["superb"]
    argv = superb_argv(config, out, name, update, folder)
    results = checkpoint_folder(out, "superb", name, update) / "results.jsonl"
    label = f"{name}@{update}"

    def read_scores():
        if not results.is_file():
            raise StudyError(f"{results} was not written")
        try:
            records = read_results(results)
        except ValueError as err:
            raise StudyError(str(err)) from None
        scores = {}
        for task in settings["tasks"]:
            _, metric, higher = TASKS[task]
            found = [r for r in records if r["task"] == task and r["metric"] == metric and r["frozen"]
                     and r["split"] == settings["split"] and r.get("label") == label]
            if not found:
                raise StudyError(f"{results}: no frozen {metric} record of {task} on split "
                                 f"{settings['split']!r} labelled {label!r} (superb.split)")
            record = found[-1]  # a resumed run appends again: the latest counts
            scores[task] = {"metric": metric, "value": float(record["value"]), "higher_is_better": higher,
                            "chance": record.get("chance"), "steps": record.get("steps")}
        return {"superb": scores}

    return run_on_checkpoint(out, "superb", name, update, argv, read_scores)


def checkpoint_targets(config, block, name, kept):
    """The kept checkpoints ``[(update, folder)]`` of run ``name`` that the
    ``block`` analysis (``finetune``, ``superb``) runs on: none when it is
    off or ``runs`` leaves ``name`` out, the last with ``checkpoints: last``."""
    settings = config[block]
    if not settings.get("enabled") or (settings.get("runs") and name not in settings["runs"]):
        return []
    return kept[-1:] if settings["checkpoints"] == "last" else kept


RECIPE_ANALYSES = {"finetune": finetune_checkpoint, "superb": superb_checkpoint}


def stage_analyse(config, out):
    recipe = load_recipe()
    prober = Prober(config)
    for name in config["runs"]:
        heuristic = chosen_heuristic(config, out, name)
        save = Path(out) / "runs" / run_label(name, heuristic) / "save"
        argv = recipe_argv(config, name, out, heuristic)
        kept = [(update, folder) for update, folder, _ in kept_checkpoints(save)]
        for block, analyse in RECIPE_ANALYSES.items():
            targets = checkpoint_targets(config, block, name, kept)
            results = [analyse(config, out, name, update, folder) for update, folder in targets]
            if results:  # the compute they took, cached runs included
                record_timing(out, f"{block}_{name}", sum(r[f"{block}_seconds"] for r in results))
        start = time.time()
        points = [(0, None)] + kept
        todo = [(u, f) for u, f in points
                if pending(config, argv, Path(out) / "analysis" / f"{name}_{u}.json")]
        if not todo:
            say(f"analyse {name}: done before")
            continue
        say(f"analyse {name}: the {heuristic} run (lowest validation loss)")
        analysis = RunAnalysis(config, name, out, recipe, heuristic)  # fixed batches, once per run
        for update, folder in todo:
            say(f"analyse {name} @ {update}")
            analyse_checkpoint(analysis, prober, update, folder,
                               Path(out) / "analysis" / f"{name}_{update}.json")
        record_timing(out, f"analyse_{name}", time.time() - start)


# -------------------------------------------------------------------- report


def collect(config, out):
    """One row per analysed checkpoint: Table 2's columns and the analyses'."""
    rows = []
    for name in config["runs"]:
        plan = plan_run(config, name)
        heuristic = chosen_heuristic(config, out, name)
        metas = {0: {}}
        metas.update({u: m for u, _, m in kept_checkpoints(Path(out) / "runs" / run_label(name, heuristic)
                                                           / "save")})
        for update, meta in sorted(metas.items()):
            result = read_json(Path(out) / "analysis" / f"{name}_{update}.json")
            if result is None:
                continue
            row = {"run": name, "updates": update, "seconds_per_update": plan["seconds_per_update"],
                   "lr_heuristic": heuristic,
                   "upper_bound_hours": meta.get("upper_bound_hours", update * plan["seconds_per_update"] / 3600),
                   "measured_hours": meta.get("measured_hours", 0.0),
                   "hours_seen": meta.get("hours_seen", 0.0),
                   "upper_bound_epochs": meta.get("upper_bound_epochs", 0.0),
                   "measured_epochs": meta.get("measured_epochs", 0.0),
                   "max_repeats": meta.get("max_repeats", 0),
                   "gradient_std": result.get("gradient_std"),
                   **{k: v for k, v in result.get("codebook_stats", {}).items()},
                   **{k: v for k, v in (result.get("probe_stats") or {}).items()}}
            tuned = read_json(Path(out) / "analysis" / f"{name}_{update}_finetune.json")
            if tuned is not None and config["finetune"].get("enabled"):
                row["finetune_metric"] = tuned["finetune_metric"]
            downstream = read_json(Path(out) / "analysis" / f"{name}_{update}_superb.json")
            if downstream is not None and config["superb"].get("enabled"):
                for task in config["superb"]["tasks"]:  # tasks since dropped from the YAML: left out
                    score = downstream["superb"].get(task)
                    if score is not None:
                        row[superb_column(task, score["metric"])] = score["value"]
                        row[f"{task}_chance"] = score.get("chance")
            rows.append(row)
    return rows


def stage_report(config, out):
    from speechbrain_ext.analysis.codebook import plot_codebook_statistics
    from speechbrain_ext.analysis.gradient_variance import plot_curves, write_rows
    from speechbrain_ext.analysis.study import equal_hours_table, quality_against_hours

    report = Path(out) / "report"
    rows = collect(config, out)
    if not rows:
        raise StudyError(f"no analysed checkpoint under {out}/analysis; run the analyse stage first")
    table2 = [r for r in rows if r["updates"] > 0]
    write_rows([{k: r[k] for k in ("run", "updates", "seconds_per_update", "upper_bound_epochs",
                                   "upper_bound_hours", "max_repeats", "measured_hours", "measured_epochs")}
                for r in table2], report / "table2.csv",
               ["run", "updates", "seconds_per_update", "upper_bound_epochs", "upper_bound_hours",
                "max_repeats", "measured_hours", "measured_epochs"])
    grad_rows = [{"run": r["run"], "updates": r["updates"], "hours_seen": r["upper_bound_hours"],
                  "gradient_std": r["gradient_std"]} for r in rows if r["gradient_std"] is not None]
    write_rows(grad_rows, report / "gradient_std.csv", ["run", "updates", "hours_seen", "gradient_std"])
    plot_curves(grad_rows, report / "gradient_std.png", "gradient_std", x="updates",
                ylabel="std of the gradient (mean over parameters)", log_y=True)
    write_rows(rows, report / "codebook.csv", ["run", "updates", "upper_bound_hours", "accuracy", "loss"])
    plot_codebook_statistics([{**r, "hours_seen": r["upper_bound_hours"]} for r in rows],
                             report / "codebook.png", x="updates")
    probed = [r for r in rows if r.get("phone_accuracy") is not None and r["updates"] > 0]
    baselines = {}
    random = [r["random_accuracy"] for r in rows if r.get("random_accuracy") is not None]
    if random:
        baselines["phone_accuracy"] = ("random network", max(random))
    quality_against_hours(probed, report / "probe_vs_hours.csv", report / "probe_vs_hours.png",
                          {"phone_accuracy": "frame phone accuracy (linear probe)"},
                          baselines=baselines, title="probe score against hours seen (Fig. 4 layout)")
    tuned = [r for r in rows if r.get("finetune_metric") is not None]
    if tuned:
        label = f"{config['finetune']['metric']} (%) on {config['finetune']['split']}, greedy"
        quality_against_hours(tuned, report / "finetune_vs_hours.csv", report / "finetune_vs_hours.png",
                              {"finetune_metric": label}, title="fine-tuning against hours seen (Fig. 4)")
    superb = write_superb(config, rows, report)
    write_report(config, out, rows, probed, equal_hours_table(probed, "phone_accuracy"), random, tuned,
                 superb)
    say(f"report: {report}")


def superb_column(task, metric):
    """The column of a task's main metric, e.g. ``kws12_acc``."""
    return f"{task}_{metric}"


def superb_axis_label(task):
    """``"Acc (%), higher is better"``: a task's main metric and its direction."""
    from speechbrain_ext.downstream.results import METRIC_TITLES, TASKS

    _, metric, higher = TASKS[task]
    return f"{METRIC_TITLES.get(metric, metric)} (%), {'higher' if higher else 'lower'} is better"


def write_superb(config, rows, report):
    """Fig. 5 / Table 5 at this scale: ``superb_vs_updates.csv`` (one row per
    checkpoint with a score: run, updates, hours seen, each task's main
    metric in percent and its majority-class share ``<task>_chance``) and
    ``superb_vs_updates.png`` (one column of panels per task; top row
    against updates, bottom row against hours seen (upper bound), where the
    batch sizes' checkpoints meet; one curve per batch size). Returns the
    rows written (``[]``: superb off or not run, nothing written)."""
    from matplotlib.figure import Figure

    from speechbrain_ext.analysis.gradient_variance import plot_curves, write_rows
    from speechbrain_ext.downstream.results import TASKS

    if not config["superb"].get("enabled"):
        return []
    tasks = [t for t in config["superb"]["tasks"]
             if any(r.get(superb_column(t, TASKS[t][1])) is not None for r in rows)]
    if not tasks:
        return []
    columns = [superb_column(t, TASKS[t][1]) for t in tasks]
    chances = [f"{t}_chance" for t in tasks]
    scored = [{"run": r["run"], "updates": r["updates"], "seconds_per_update": r["seconds_per_update"],
               "upper_bound_hours": r["upper_bound_hours"], "measured_hours": r["measured_hours"],
               **{c: r.get(c) for c in columns + chances}}
              for r in rows if any(r.get(c) is not None for c in columns)]
    write_rows(scored, report / "superb_vs_updates.csv",
               ["run", "updates", "seconds_per_update", "upper_bound_hours", "measured_hours", *columns,
                *chances])
    figure = Figure(figsize=(max(6.0, 4.6 * len(tasks)), 7.0))  # the title fits over one task
    axes = figure.subplots(2, len(tasks), squeeze=False)
    for i, (task, column) in enumerate(zip(tasks, columns)):
        points = [{"run": r["run"], "updates": r["updates"], "hours_seen": r["upper_bound_hours"],
                   column: r[column]} for r in scored if r[column] is not None]
        chance = max((r[f"{task}_chance"] for r in scored if r[f"{task}_chance"] is not None), default=None)
        for ax, x in zip(axes[:, i], ("updates", "hours_seen")):
            plot_curves(points, None, column, x=x, ylabel=superb_axis_label(task), ax=ax)
            if chance is not None:  # classification: the majority class's share of the test split
                ax.axhline(chance, color="grey", linestyle=":", label="majority class")
            ax.legend(fontsize="small", title="batch size")
            ax.set_title(f"{TASKS[task][0]}, frozen upstream", fontsize=10)
            ax.grid(alpha=0.3)
        axes[1, i].set_xlabel("hours of audio seen (upper bound)")
    figure.suptitle("downstream tasks against updates and hours seen (Fig. 5)", fontsize=11)
    figure.tight_layout()
    figure.savefig(report / "superb_vs_updates.png", dpi=110)
    return scored


def _fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}g}"


def write_report(config, out, rows, probed, equal, random, tuned=(), superb=()):
    """``report.md``: Table 2, the gradient std per checkpoint and batch size
    (does it fall with the batch size?), the probe at equal hours, and, when
    run, the fine-tuning (``tuned``) and the downstream tasks (``superb``,
    :func:`write_superb`'s rows)."""
    runs = sorted(config["runs"], key=lambda n: config["runs"][n]["seconds_per_update"])
    by = {(r["run"], r["updates"]): r for r in rows}
    lines = ["# Batch-size study (paper 001), micro scale", "",
             f"Runs: {', '.join(runs)} per update, {config['hours_seen']} h of audio each (upper bound), "
             f"{config['checkpoints']} kept checkpoints each. Figures: gradient_std.png, codebook.png, "
             "probe_vs_hours.png.", "", "## Table 2", "",
             "| run | updates | epochs (upper bound) | hours (upper bound) | max repeats | hours (measured) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r["updates"] > 0:
            lines.append(f"| {r['run']} | {r['updates']} | {_fmt(r['upper_bound_epochs'], 3)} | "
                         f"{_fmt(r['upper_bound_hours'], 3)} | {r['max_repeats']} | "
                         f"{_fmt(r['measured_hours'], 3)} |")
    lines += ["", "## Learning rates (Table 1 layout)", "",
              "Maximum LR of each heuristic and the lowest validation loss of its run "
              "(sum-reduced, so comparable within a batch size only); **bold**: the run analysed.", "",
              "| run | heuristic | max LR | lowest validation loss |", "|---|---|---|---|"]
    hp_ref = run_hparams(recipe_argv(config, runs[0], out, heuristics_of(config, runs[0])[0]))
    for name in runs:
        losses = validation_losses(config, out, name)
        chosen = best_heuristic(losses)
        for heuristic, values in losses.items():
            lr = learning_rate(heuristic, config["runs"][name]["seconds_per_update"],
                               hp_ref["lr_reference"], hp_ref["lr_reference_seconds"])
            low = min((v for v in values if v == v), default=float("nan"))
            mark = "**" if heuristic == chosen else ""
            lines.append(f"| {name} | {mark}{heuristic}{mark} | {lr:.3g} | {_fmt(low)} |")
    lines += ["", "## Gradient standard deviation (Fig. 3)", "",
              "Checkpoint k of every run has seen the same hours; columns: batch sizes.", "",
              "| checkpoint | " + " | ".join(runs) + " | falls with batch size |",
              "|---|" + "---|" * (len(runs) + 1)]
    falls = []
    for k in range(config["checkpoints"] + 1):
        values = []
        for name in runs:
            update = k * plan_run(config, name)["every"]
            values.append((by.get((name, update)) or {}).get("gradient_std"))
        ok = all(v is not None for v in values) and all(a > b for a, b in zip(values, values[1:]))
        falls.append(ok)
        lines.append(f"| {k} | " + " | ".join(_fmt(v) for v in values) + f" | {'yes' if ok else 'no'} |")
    lines += ["", f"The gradient std falls monotonically with the batch size at {sum(falls)} of "
              f"{len(falls)} checkpoints (paper 001, Fig. 3: it does, up to 40 min).", ""]
    if probed:
        lines += ["## Probe score against hours seen (Fig. 4 / Table 4 layout)", "",
                  "| hours seen | " + " | ".join(runs) + " | spread |", "|---|" + "---|" * (len(runs) + 1)]
        spreads, gains = [], []
        for hours, members, spread in equal:
            values = {run: v for run, _, v in members}
            lines.append(f"| {hours:g} | " + " | ".join(_fmt(values.get(n), 3) for n in runs)
                         + f" | {spread:.3f} |")
            spreads.append(spread)
        for name in runs:
            curve = sorted((r["upper_bound_hours"], r["phone_accuracy"]) for r in probed if r["run"] == name)
            if len(curve) >= 2:
                gains.append(curve[-1][1] - curve[0][1])
        floor = f"; a random network of the same shape scores {max(random):.3f}" if random else ""
        spread = max(spreads) if spreads else float("nan")
        gain = sum(gains) / len(gains) if gains else float("nan")
        if not (gain > spread):  # nan included: nothing to compare
            verdict = ("Inconclusive for paper 001's claim: the probe does not rise along the runs by "
                       "more than the batch sizes differ at equal hours, so equal scores say nothing.")
        else:
            verdict = (f"Agrees with paper 001's claim: at equal hours seen the batch sizes differ by at "
                       f"most {spread:.3f}, against a mean gain of {gain:+.3f} along the runs.")
        lines += ["", f"Largest spread between batch sizes at equal hours: {spread:.3f}; gain along each "
                  f"run's curve (first to last checkpoint): {', '.join(f'{g:+.3f}' for g in gains)}"
                  f"{floor}. {verdict}", ""]
    if tuned:
        metric = config["finetune"]["metric"]
        lines += [f"## Fine-tuning {metric} against hours seen (Fig. 4)", "",
                  f"| run | updates | hours seen (upper bound) | {metric} (%) |", "|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['updates']} | {_fmt(r['upper_bound_hours'], 3)} | "
                  f"{_fmt(r['finetune_metric'], 4)} |" for r in tuned]
        lines.append("")
    if superb:
        lines += superb_section(config, runs, superb)
    timings = read_json(Path(out) / "timings.json", {})
    lines += ["## Time", "", f"{sum(timings.values()):.0f} s in all: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(timings.items())), ""]
    (Path(out) / "report" / "report.md").write_text("\n".join(lines))


def superb_section(config, runs, superb):
    """report.md's lines on the downstream tasks: Table 5's layout (batch
    size, updates, hours seen, one column per task) and, per task, the
    spread between batch sizes at equal hours against the change along each
    run (paper 001, Section 4.4: hours seen, not the batch size, decide)."""
    from speechbrain_ext.analysis.study import equal_hours_table
    from speechbrain_ext.downstream.results import METRIC_TITLES, TASKS

    settings = config["superb"]
    tasks = [t for t in settings["tasks"] if any(r.get(superb_column(t, TASKS[t][1])) is not None
                                                 for r in superb)]
    columns = [superb_column(t, TASKS[t][1]) for t in tasks]
    titles = [f"{TASKS[t][0]} {METRIC_TITLES.get(TASKS[t][1], TASKS[t][1])} (%) {'↑' if TASKS[t][2] else '↓'}"
              for t in tasks]
    lines = ["## Downstream tasks against updates (Fig. 5 / Table 5 layout)", "",
             f"Frozen upstream (weighted sum of the layers), `recipes/downstream/run_suite.py --frozen"
             f"{' --micro' if settings['micro'] else ''}`, split {settings['split']}; figure: "
             "superb_vs_updates.png.", "",
             "| batch size | updates | hours seen (upper bound) | " + " | ".join(titles) + " |",
             "|---|---|---|" + "---|" * len(tasks)]
    order = {n: i for i, n in enumerate(runs)}
    for r in sorted(superb, key=lambda r: (order.get(r["run"], len(order)), r["updates"])):
        lines.append(f"| {r['run']} | {r['updates']} | {_fmt(r['upper_bound_hours'], 3)} | "
                     + " | ".join(_fmt(r[c], 4) for c in columns) + " |")
    lines.append("")
    for task, column in zip(tasks, columns):
        sign = 1 if TASKS[task][2] else -1  # an improvement is positive for errors too
        equal = equal_hours_table(superb, column)
        spread = max((s for _, _, s in equal), default=None)  # None: no two runs at equal hours
        changes = {}
        for name in runs:
            curve = sorted((r["updates"], r[column]) for r in superb if r["run"] == name and r[column] is not None)
            if len(curve) >= 2:
                changes[name] = sign * (curve[-1][1] - curve[0][1])
        gain = sum(changes.values()) / len(changes) if changes else None
        chance = max((r[f"{task}_chance"] for r in superb if r.get(f"{task}_chance") is not None), default=None)
        best = max(r[column] for r in superb if r[column] is not None)
        if chance is not None and TASKS[task][2] and best <= chance:
            verdict = "No checkpoint beats the majority class, so the scores say nothing about the representations"
        elif gain is not None and spread is not None and gain > spread:
            verdict = (f"Agrees with paper 001 (Section 4.4): the score improves by {gain:+.2f} points along "
                       f"the runs on average, more than the batch sizes differ at equal hours")
        else:
            verdict = ("Inconclusive: the score does not improve along the runs by more than the batch sizes "
                       "differ at equal hours")
        lines.append(f"- {TASKS[task][0]}: largest spread between batch sizes at equal hours: "
                     + (f"{_fmt(spread, 3)} points" if spread is not None else "none (no two at equal hours)")
                     + "; improvement from first to last kept checkpoint: "
                     + (", ".join(f"{c:+.2f} ({n})" for n, c in changes.items()) or "-")
                     + (f"; majority class {chance:.2f} %" if chance is not None else "")
                     + f". {verdict}.")
    return lines + [""]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--out", default=None, help="default: the config's output_folder")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = load_config(args.config)
    out = Path(args.out or REPO_ROOT / config["output_folder"]).resolve()
    for stage in STAGES:
        if stage in args.stages:
            start = time.time()
            {"pretrain": stage_pretrain, "analyse": stage_analyse, "report": stage_report}[stage](config, out)
            say(f"{stage}: {time.time() - start:.0f} s")
    return out


if __name__ == "__main__":
    try:
        main()
    except StudyError as err:
        sys.exit(f"batch_size_study: {err}")
