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
from speechbrain_ext.downstream.recipe import (audio_dataset, encode_label, label_encoder,
                                               load_recipe, require_folder, require_manifest,
                                               subset_options)

RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = {"train": "iden_train", "valid": "iden_dev", "test": "iden_test"}


def dataio_prep(hparams):
    datasets = {}
    for split, name in SPLITS.items():
        csv_path = Path(hparams["prep_folder"]) / f"{name}.csv"
        require_manifest(csv_path, f"python -m data_prep.voxceleb --data_folder "
                                   f"{hparams['data_folder']} --save_folder {hparams['prep_folder']}")
        datasets[split] = audio_dataset(csv_path, hparams["data_folder"], ["spk_id"],
                                        **subset_options(hparams, split))
    encoder = label_encoder(datasets, "spk_id", expected=hparams["num_classes"],
                            save_path=Path(hparams["save_folder"]) / "label_encoder.txt")
    for dataset in datasets.values():
        encode_label(dataset, encoder, "spk_id")
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
    loader = {"batch_size": hparams["eval_batch_size"], "num_workers": hparams["num_workers"]}
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs={**loader, "batch_size": hparams["batch_size"], "shuffle": True},
              valid_loader_kwargs=loader)
    brain.evaluate_best(datasets["test"], "test", loader)
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
