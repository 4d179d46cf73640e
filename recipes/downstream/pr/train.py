#!/usr/bin/env python3
"""Phoneme recognition on LibriSpeech (phonemes from the lexicon) on a frozen
or fine-tuned backbone: linear head, phoneme CTC, greedy decoding, PER
(paper 001's SUPERB PR).

    python recipes/downstream/pr/train.py hparams/pr.yaml --backbone CKPT \\
        --data_folder /data/LibriSpeech [--lexicon_file LEXICON] [--freeze False]
    python recipes/downstream/pr/train.py hparams/pr.yaml \\
        --overrides_file ../overrides/micro.yaml --overrides_file ../overrides/micro_ctc.yaml
"""
import sys
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from data_prep.librispeech_phonemes import prepare_librispeech_phonemes
from speechbrain_ext.downstream.ctc import run_ctc_task
from speechbrain_ext.downstream.recipe import load_recipe, prepare_command, require_folder

RECIPE_DIR = Path(__file__).resolve().parent


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the LibriSpeech folder holding train-clean-100/ ...")
    splits = {s: hparams[f"{s}_split"] for s in ("train", "valid", "test")}
    run_on_main(prepare_librispeech_phonemes, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "splits": list(splits.values()), "lexicon_file": hparams["lexicon_file"],
        "sample_rate": hparams["sample_rate"], "skip_prep": hparams["skip_prep"]})
    csv_files = {s: Path(hparams["prep_folder"]) / f"{name}_phn.csv" for s, name in splits.items()}
    command = prepare_command("librispeech_phonemes", hparams, "--splits", *splits.values())
    return run_ctc_task(hparams, run_opts, csv_files, command)


if __name__ == "__main__":
    main(sys.argv[1:])
