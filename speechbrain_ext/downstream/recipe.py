"""What every downstream recipe's ``train.py`` shares besides the Brain: the
command line (SpeechBrain's, plus ``--overrides_file``), manifest checks,
audio datasets from the ``data_prep`` CSVs, and label encoders that refuse
labels they have never seen -- all failing before training starts.

    python recipes/downstream/kws/train.py hparams/kws.yaml --backbone CKPT --data_folder DIR
    python recipes/downstream/kws/train.py hparams/kws.yaml --overrides_file ../overrides/micro.yaml
    python recipes/downstream/kws/train.py hparams/kws.yaml --help   # the options and the YAML's keys

``--max_updates N`` stops training after N updates (SpeechBrain's
``optimizer_step_limit``; the task YAMLs count epochs); a checkpoint whose
architecture contradicts the YAML's ``backbone_config`` is an error that
names the micro override.

Example
-------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "train.csv").write_text("ID,duration,wav,label\\na,1.0,x.wav,yes\\nb,1.0,y.wav,no\\n")
>>> _ = (folder / "test.csv").write_text("ID,duration,wav,label\\nc,1.0,z.wav,maybe\\n")
>>> sets = {s: audio_dataset(folder / f"{s}.csv", folder, ["label"]) for s in ("train", "test")}
>>> label_encoder(sets, "label")
Traceback (most recent call last):
...
speechbrain_ext.downstream.recipe.UnseenLabelError: label 'label' of test (...test.csv) holds values absent from train: ['maybe']
"""
import csv
import dataclasses
import logging
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataio import read_audio
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.io.data import DATA_ROOT_KEY, DataPreparationError
from speechbrain_ext.training import recipe_cli

logger = logging.getLogger(__name__)
# overrides naming files or folders, resolved like the hparams file
# (as given, else under the recipe folder, else under the repository root)
PATH_KEYS = ("backbone", "data_folder")


class UnseenLabelError(ValueError):
    """A valid/test label that the training split (the encoder) never saw."""


def _take_max_updates(argv):
    """``(argv without --max_updates, N or None)``: the task YAMLs count
    epochs, not updates, so ``--max_updates`` (every recipe's smoke-run
    option) becomes SpeechBrain's ``optimizer_step_limit``."""
    rest, limit, args = [], None, iter(argv)
    for arg in args:
        if arg == "--max_updates":
            limit = next(args, None)
        elif arg.startswith("--max_updates="):
            limit = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if limit is not None:
        try:
            limit = int(float(limit))
        except ValueError:
            raise ValueError(f"--max_updates={limit!r}: expected an int") from None
    return rest, limit


def parse_arguments(argv, recipe_dir):
    """The project's recipe command line (``speechbrain_ext.training.recipe_cli``).
    An override file is shared by every task (``overrides/micro.yaml`` sizes
    the x-vector head too), so its keys that the task's YAML lacks are
    skipped; a command-line key the YAML lacks stays an error (a typo).
    ``--max_updates N`` stops training after N updates (evaluation still runs).

    >>> _take_max_updates(["kws.yaml", "--max_updates=2", "--freeze", "True"])
    (['kws.yaml', '--freeze', 'True'], 2)
    """
    argv, limit = _take_max_updates(list(argv))
    hparams_file, run_opts, overrides = recipe_cli.parse_arguments(
        argv, recipe_dir, skip_unknown_file_keys=True, path_keys=PATH_KEYS)
    if limit is not None:
        run_opts = dataclasses.replace(run_opts, optimizer_step_limit=limit, overridden_args={
            *run_opts.overridden_args, "optimizer_step_limit"})
    return hparams_file, run_opts, overrides


MICRO_HINT = ("a micro checkpoint (overrides/micro.yaml's pre-training, `make demo`) needs the "
              "downstream micro override: add --overrides_file ../overrides/micro.yaml "
              "(run_suite.py: --micro)")


def load_recipe(argv, recipe_dir):
    """Parse the command line, load the YAML (building the upstream of the
    checkpoint's architecture: a ``backbone_config`` architecture key that
    disagrees with the checkpoint fails here) and create the experiment
    folder. Returns (hparams, run_opts)."""
    hparams_file, run_opts, overrides = parse_arguments(argv, recipe_dir)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as f:
        try:
            hparams = load_hyperpyyaml(f, overrides)
        except CheckpointError as err:
            if "another architecture" not in str(err):
                raise
            raise CheckpointError(f"{err}\n{MICRO_HINT}") from err
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    logger.info(hparams["upstream"].describe())
    return hparams, run_opts


def require_folder(folder, what):
    if not Path(folder).is_dir():
        raise DataPreparationError(f"data_folder {folder} does not exist (expected {what})")


def require_manifest(path, prepare_command):
    """A task manifest that was not prepared is an error naming the command
    that prepares it."""
    if not Path(path).is_file():
        raise DataPreparationError(f"task manifest {path} was not prepared; run\n  "
                                   f"{prepare_command}\nor set skip_prep: False")
    with open(path) as f:
        header = next(csv.reader(f), None)
    if not header or header[:2] != ["ID", "duration"]:
        raise DataPreparationError(f"{path}: not a data_prep manifest (expected an 'ID,duration,...' "
                                   f"header, got {header})")


def read_segment(wav, start=None, stop=None):
    """Waveform ``[samples]`` of a file or of a sample range of it."""
    if start is None or start == "":
        return read_audio(wav)
    return read_audio({"file": wav, "start": int(start), "stop": int(stop)})


def first_per_label(csv_path, label_keys, per_label):
    """IDs of the first ``per_label`` rows of each label value (the tuple of
    ``label_keys``' values) of a manifest: a tiny subset that keeps every
    label (class, speaker, intent)."""
    kept, counts = set(), {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            label = tuple(row[k] for k in label_keys)
            if counts.get(label, 0) < int(per_label):
                counts[label] = counts.get(label, 0) + 1
                kept.add(row["ID"])
    return kept


def audio_dataset(csv_path, data_folder, keys=(), max_items=None, max_per_label=None,
                  label_keys=None, max_seconds=None, sample_rate=16000):
    """A ``DynamicItemDataset`` of a manifest providing ``id``, ``sig``
    (segments when the CSV has ``start``/``stop``) and the raw ``keys``.
    Tiny subsets at micro scale: ``max_per_label`` keeps the first k rows of
    each value of ``label_keys`` (default ``keys``; every label survives),
    then ``max_items`` keeps every k-th row; ``max_seconds`` keeps the first
    seconds of each utterance (at ``sample_rate``)."""
    dataset = DynamicItemDataset.from_csv(str(csv_path),
                                          replacements={DATA_ROOT_KEY: str(data_folder)})
    with open(csv_path) as f:
        columns = next(csv.reader(f))
    label_keys = list(label_keys or keys)
    missing = [k for k in [*keys, *(label_keys if max_per_label else [])] if k not in columns]
    if missing:
        raise DataPreparationError(f"{csv_path}: manifest lacks the columns {missing}")
    max_samples = None if max_seconds is None else int(float(max_seconds) * sample_rate)

    def read(wav, start=None, stop=None):
        return read_segment(wav, start, stop)[:max_samples]

    takes = ["wav", "start", "stop"] if "start" in columns else ["wav"]
    dataset.add_dynamic_item(read, takes=takes, provides="sig")
    dataset.set_output_keys(["id", "sig", *keys])
    ids = dataset.data_ids
    if max_per_label is not None:
        kept = first_per_label(csv_path, label_keys, max_per_label)
        ids = [uid for uid in ids if uid in kept]
    if max_items is not None and int(max_items) < len(ids):
        # every k-th row: a tiny subset that still covers the manifest's classes
        stride = len(ids) / int(max_items)
        ids = [ids[int(i * stride)] for i in range(int(max_items))]
    if len(ids) < len(dataset.data_ids):
        chosen = set(ids)
        dataset = dataset.filtered_sorted(key_test={"id": lambda uid: uid in chosen})
    dataset.csv_path = str(csv_path)
    return dataset


def subset_options(hparams, split):
    """``audio_dataset`` subset arguments of a split from the YAML's
    ``max_train_items`` / ``max_train_items_per_label`` (training split) and
    ``max_eval_items`` (the others), and the crop ``max_seconds`` (every
    split); all null at paper scale."""
    if split == "train":
        return {"max_items": hparams.get("max_train_items"),
                "max_per_label": hparams.get("max_train_items_per_label"),
                "max_seconds": hparams.get("max_seconds")}
    return {"max_items": hparams.get("max_eval_items"), "max_seconds": hparams.get("max_seconds")}


def label_encoder(datasets, key, train="train", expected=None, save_path=None):
    """A ``CategoricalEncoder`` fitted on ``datasets[train][key]``; every
    label of the other splits must have been seen (``UnseenLabelError``
    otherwise), and ``expected`` (the YAML's class count) must match."""
    encoder = CategoricalEncoder()
    with datasets[train].output_keys_as([key]):
        train_labels = {item[key] for item in datasets[train]}
    encoder.update_from_iterable(sorted(train_labels))
    encoder.expect_len(len(train_labels))
    for split, dataset in datasets.items():
        if split == train:
            continue
        with dataset.output_keys_as([key]):
            unseen = sorted({item[key] for item in dataset} - train_labels)
        if unseen:
            raise UnseenLabelError(
                f"label {key!r} of {split} ({getattr(dataset, 'csv_path', '?')}) holds values "
                f"absent from {train}: {unseen[:10]}")
    if expected is not None and len(encoder) != int(expected):
        raise ValueError(f"{key}: the YAML expects {expected} classes, the training manifest "
                         f"{getattr(datasets[train], 'csv_path', '')} holds {len(encoder)}: "
                         f"{sorted(train_labels)}")
    if save_path is not None:
        encoder.save(save_path)
    return encoder


def encode_label(dataset, encoder, key, provides=None):
    """Add ``<key>_encoded`` (``LongTensor [1]``) to a dataset's outputs."""
    provides = provides or f"{key}_encoded"
    dataset.add_dynamic_item(lambda label: torch.LongTensor([encoder.encode_label(label)]),
                             takes=[key], provides=provides)
    dataset.set_output_keys([*dataset.pipeline.output_mapping.keys(), provides])
    return dataset


def balanced_sampler(dataset, key, seed):
    """Class-balanced sampling with replacement (SUPERB's KS training): each
    class is drawn equally often; one epoch draws ``len(dataset)`` items."""
    from speechbrain.dataio.sampler import ReproducibleWeightedRandomSampler

    with dataset.output_keys_as([key]):
        labels = [item[key] for item in dataset]
    counts = {label: labels.count(label) for label in set(labels)}
    weights = [1.0 / counts[label] for label in labels]
    return ReproducibleWeightedRandomSampler(weights, num_samples=len(labels), replacement=True,
                                             seed=seed)


def prepare_command(module, hparams, *extra):
    """The command line that prepares a task's manifests (errors name it):
    ``python -m data_prep.<module> --data_folder .. --save_folder .. [extra]``."""
    return " ".join([f"python -m data_prep.{module} --data_folder {hparams['data_folder']} "
                     f"--save_folder {hparams['prep_folder']}", *extra])


def manifest_datasets(csv_paths, hparams, keys, prepare):
    """``{split: audio_dataset}`` of ``csv_paths`` (``{split: manifest}``),
    with the YAML's micro-scale subsets (``subset_options``); a manifest that
    was not prepared is an error naming ``prepare`` (a command line)."""
    datasets = {}
    for split, csv_path in csv_paths.items():
        require_manifest(csv_path, prepare)
        datasets[split] = audio_dataset(csv_path, hparams["data_folder"], keys,
                                        **subset_options(hparams, split))
    return datasets


def encode_labels(datasets, key, expected, save_path):
    """Fit ``label_encoder`` on the training split (saved to ``save_path``)
    and add ``<key>_encoded`` to every dataset; returns the encoder."""
    encoder = label_encoder(datasets, key, expected=expected, save_path=save_path)
    for dataset in datasets.values():
        encode_label(dataset, encoder, key)
    return encoder


def fit_brain(brain, hparams, datasets, train_sampler=None):
    """``brain.fit`` on ``datasets`` train / valid with the YAML's
    ``batch_size``, ``eval_batch_size`` and ``num_workers`` (training
    shuffled, or drawn by ``train_sampler``); returns the evaluation loader
    arguments (for ``evaluate_best``)."""
    eval_kwargs = {"batch_size": hparams["eval_batch_size"], "num_workers": hparams["num_workers"]}
    train_kwargs = {**eval_kwargs, "batch_size": hparams["batch_size"]}
    train_kwargs.update({"shuffle": True} if train_sampler is None else {"sampler": train_sampler})
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs=train_kwargs, valid_loader_kwargs=eval_kwargs)
    return eval_kwargs
