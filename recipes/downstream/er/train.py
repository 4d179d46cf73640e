#!/usr/bin/env python3
"""Emotion recognition (IEMOCAP, 4 classes, 5-fold leave-one-session-out)
on a frozen or fine-tuned backbone: mean-pooling + linear; the result is the
accuracy averaged over the folds (paper 003, Table 1 "ER").

Each fold trains a fresh head (and backbone copy, unfrozen) from the YAML;
every fold's test accuracy is written (split ``test_fold<k>``), then their
mean (split ``test``).

    python recipes/downstream/er/train.py hparams/er.yaml --backbone CKPT \\
        --data_folder /data/IEMOCAP_full_release [--freeze False]
    python recipes/downstream/er/train.py hparams/er.yaml --overrides_file ../overrides/micro.yaml
"""
import logging
import sys
from pathlib import Path

from speechbrain.utils.distributed import if_main_process, run_on_main

from data_prep.iemocap import prepare_iemocap
from speechbrain_ext.downstream import ClassificationBrain
from speechbrain_ext.downstream.metrics import average_folds
from speechbrain_ext.downstream.recipe import (encode_labels, fit_brain, load_recipe,
                                               manifest_datasets, prepare_command, require_folder,
                                               require_manifest)

logger = logging.getLogger(__name__)
RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "valid", "test")


def manifests(hparams, fold):
    return {split: Path(hparams["prep_folder"]) / f"fold{fold}_{split}.csv" for split in SPLITS}


def dataio_prep(hparams, fold):
    datasets = manifest_datasets(manifests(hparams, fold), hparams, ["emotion"],
                                 prepare_command("iemocap", hparams))
    encode_labels(datasets, "emotion", hparams["num_classes"],
                  Path(hparams["save_folder"]) / "label_encoder.txt")
    return datasets


def run_fold(argv, fold):
    """Train and test one fold; returns (brain, test accuracy)."""
    hparams, run_opts = load_recipe([*argv, "--fold", str(fold)], RECIPE_DIR)
    datasets = dataio_prep(hparams, fold)
    brain = ClassificationBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                                checkpointer=hparams["checkpointer"])
    stats = brain.evaluate_best(datasets["test"], f"test_fold{fold}",
                                fit_brain(brain, hparams, datasets))
    return brain, stats[hparams["metric"]]


def main(argv):
    hparams, _ = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the IEMOCAP_full_release folder (Session1..5)")
    run_on_main(prepare_iemocap, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "folds": hparams["folds"], "skip_prep": hparams["skip_prep"]})
    for fold in hparams["folds"]:  # fail on any unprepared fold before training one
        for csv_path in manifests(hparams, fold).values():
            require_manifest(csv_path, prepare_command("iemocap", hparams))
    accuracies = {}
    for fold in hparams["folds"]:
        brain, accuracies[fold] = run_fold(argv, fold)
    mean = average_folds(accuracies)
    if if_main_process():
        logger.info(f"ER accuracy per fold {accuracies}, mean {mean:.2f}")
    brain.write_result(hparams["metric"], mean, "test", folds=accuracies)
    brain.fold_accuracies = accuracies
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
