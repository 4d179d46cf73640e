#!/usr/bin/env python3
"""Speaker identification (VoxCeleb1 identification split) on a frozen or
fine-tuned backbone: x-vector head, cross-entropy, accuracy (paper 003).

    python recipes/downstream/sid/train.py hparams/sid.yaml --backbone CKPT \\
        --data_folder /data/VoxCeleb1 [--freeze False]
    python recipes/downstream/sid/train.py hparams/sid.yaml --overrides_file ../overrides/micro.yaml
"""
import sys
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from data_prep.voxceleb import prepare_voxceleb
from speechbrain_ext.downstream import ClassificationBrain
from speechbrain_ext.downstream.recipe import (encode_labels, fit_brain, load_recipe,
                                               manifest_datasets, prepare_command, require_folder)

RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = {"train": "iden_train", "valid": "iden_dev", "test": "iden_test"}


def dataio_prep(hparams):
    csv_paths = {split: Path(hparams["prep_folder"]) / f"{name}.csv" for split, name in SPLITS.items()}
    datasets = manifest_datasets(csv_paths, hparams, ["spk_id"], prepare_command("voxceleb", hparams))
    encode_labels(datasets, "spk_id", hparams["num_classes"],
                  Path(hparams["save_folder"]) / "label_encoder.txt")
    return datasets


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the VoxCeleb1 folder (wav/, iden_split.txt)")
    run_on_main(prepare_voxceleb, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "tasks": ["identification"], "skip_prep": hparams["skip_prep"]})
    datasets = dataio_prep(hparams)
    brain = ClassificationBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                                checkpointer=hparams["checkpointer"])
    brain.evaluate_best(datasets["test"], "test", fit_brain(brain, hparams, datasets))
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
