#!/usr/bin/env python3
"""Slot filling on Timers and Such on a frozen or fine-tuned backbone: 2-layer
BiLSTM, CTC over slot-tagged transcripts, greedy decoding, CER, slot-value CER
and slot-type F1 (paper 003, Table 1 "SF").

    python recipes/downstream/sf/train.py hparams/sf.yaml --backbone CKPT \\
        --data_folder /data/timers-and-such [--freeze False]
    python recipes/downstream/sf/train.py hparams/sf.yaml \\
        --overrides_file ../overrides/micro.yaml --overrides_file ../overrides/micro_ctc.yaml
"""
import sys
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from data_prep.timers_and_such import prepare_timers_and_such
from speechbrain_ext.downstream.ctc import run_ctc_task
from speechbrain_ext.downstream.recipe import load_recipe, prepare_command, require_folder

RECIPE_DIR = Path(__file__).resolve().parent


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the timers-and-such folder holding train-real.csv ...")
    run_on_main(prepare_timers_and_such, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "train_splits": hparams["train_splits"], "dev_splits": hparams["valid_splits"],
        "test_splits": hparams["test_splits"], "sample_rate": hparams["sample_rate"],
        "skip_prep": hparams["skip_prep"]})
    # the preparation names the merged outputs train / dev / test
    csv_files = {s: Path(hparams["prep_folder"]) / f"{name}.csv"
                 for s, name in (("train", "train"), ("valid", "dev"), ("test", "test"))}
    command = prepare_command("timers_and_such", hparams)
    return run_ctc_task(hparams, run_opts, csv_files, command)


if __name__ == "__main__":
    main(sys.argv[1:])
