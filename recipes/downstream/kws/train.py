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
from speechbrain_ext.downstream.recipe import (audio_dataset, balanced_sampler, encode_label,
                                               label_encoder, load_recipe, require_folder,
                                               require_manifest, subset_options)

RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "valid", "test")


def dataio_prep(hparams):
    """Datasets of ``kws{N}_{split}.csv`` with ``sig`` and ``label_encoded``."""
    prefix = f"kws{hparams['num_classes']}"
    datasets = {}
    for split in SPLITS:
        csv_path = Path(hparams["prep_folder"]) / f"{prefix}_{split}.csv"
        require_manifest(csv_path, f"python -m data_prep.speech_commands --data_folder "
                                   f"{hparams['data_folder']} --save_folder {hparams['prep_folder']}")
        datasets[split] = audio_dataset(csv_path, hparams["data_folder"], ["label"],
                                        **subset_options(hparams, split))
    encoder = label_encoder(datasets, "label", expected=hparams["num_classes"],
                            save_path=Path(hparams["save_folder"]) / "label_encoder.txt")
    for dataset in datasets.values():
        encode_label(dataset, encoder, "label")
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
    train_kwargs = {"batch_size": hparams["batch_size"], "num_workers": hparams["num_workers"]}
    if hparams["class_balanced"]:
        train_kwargs["sampler"] = balanced_sampler(datasets["train"], "label", hparams["seed"])
    else:
        train_kwargs["shuffle"] = True
    eval_kwargs = {"batch_size": hparams["eval_batch_size"], "num_workers": hparams["num_workers"]}
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs=train_kwargs, valid_loader_kwargs=eval_kwargs)
    brain.evaluate_best(datasets["test"], "test", eval_kwargs)
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
