#!/usr/bin/env python3
"""ASR on LibriSpeech (train-clean-100 / dev-clean / test-clean) on a frozen or
fine-tuned backbone: 2-layer BiLSTM, character CTC, greedy decoding, WER
(paper 003, Table 1 "ASR"; SUPERB ASR).

    python recipes/downstream/asr/train.py hparams/asr.yaml --backbone CKPT \\
        --data_folder /data/LibriSpeech [--freeze False]
    python recipes/downstream/asr/train.py hparams/asr.yaml \\
        --overrides_file ../overrides/micro.yaml --overrides_file ../overrides/micro_ctc.yaml
"""
import sys
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from data_prep.librispeech import prepare_librispeech
from speechbrain_ext.downstream.ctc import run_ctc_task
from speechbrain_ext.downstream.recipe import load_recipe, prepare_command, require_folder

RECIPE_DIR = Path(__file__).resolve().parent


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the LibriSpeech folder holding train-clean-100/ ...")
    splits = {s: hparams[f"{s}_split"] for s in ("train", "valid", "test")}
    run_on_main(prepare_librispeech, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "splits": list(splits.values()), "sample_rate": hparams["sample_rate"],
        "skip_prep": hparams["skip_prep"]})
    csv_files = {s: Path(hparams["prep_folder"]) / f"{name}.csv" for s, name in splits.items()}
    command = prepare_command("librispeech", hparams, "--splits", *splits.values())
    return run_ctc_task(hparams, run_opts, csv_files, command)


if __name__ == "__main__":
    main(sys.argv[1:])
