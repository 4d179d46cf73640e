#!/usr/bin/env python3
"""Keyword spotting (Speech Commands v0.02, 12 or 35 classes) on a frozen or
fine-tuned backbone: mean-pooling + linear, accuracy (paper 003, Table 1).

    python recipes/downstream/kws/train.py hparams/kws.yaml --backbone CKPT \\
        --data_folder /data/speech_commands_v0.02 [--num_classes 35] [--freeze False]
    python recipes/downstream/kws/train.py hparams/kws.yaml --overrides_file ../overrides/micro.yaml
"""
import sys
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from data_prep.speech_commands import prepare_speech_commands
from speechbrain_ext.downstream import ClassificationBrain
from speechbrain_ext.downstream.recipe import (balanced_sampler, encode_labels, fit_brain,
                                               load_recipe, manifest_datasets, prepare_command,
                                               require_folder)

RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "valid", "test")


def dataio_prep(hparams):
    """Datasets of ``kws{N}_{split}.csv`` with ``sig`` and ``label_encoded``."""
    prefix = f"kws{hparams['num_classes']}"
    csv_paths = {split: Path(hparams["prep_folder"]) / f"{prefix}_{split}.csv" for split in SPLITS}
    datasets = manifest_datasets(csv_paths, hparams, ["label"],
                                 prepare_command("speech_commands", hparams))
    encode_labels(datasets, "label", hparams["num_classes"],
                  Path(hparams["save_folder"]) / "label_encoder.txt")
    return datasets


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the speech_commands_v0.02 folder")
    run_on_main(prepare_speech_commands, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "num_classes": [hparams["num_classes"]], "skip_prep": hparams["skip_prep"]})
    datasets = dataio_prep(hparams)
    brain = ClassificationBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                                checkpointer=hparams["checkpointer"])
    sampler = (balanced_sampler(datasets["train"], "label", hparams["seed"])
               if hparams["class_balanced"] else None)
    eval_kwargs = fit_brain(brain, hparams, datasets, train_sampler=sampler)
    brain.evaluate_best(datasets["test"], "test", eval_kwargs)
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
