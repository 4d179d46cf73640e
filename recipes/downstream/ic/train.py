#!/usr/bin/env python3
"""Intent classification (Fluent Speech Commands) on a frozen or fine-tuned
backbone: mean-pooling + linear split into action / object / location heads;
accuracy = the three slots right (paper 001, SUPERB IC).

    python recipes/downstream/ic/train.py hparams/ic.yaml --backbone CKPT \\
        --data_folder /data/fluent_speech_commands_dataset [--freeze False]
    python recipes/downstream/ic/train.py hparams/ic.yaml --overrides_file ../overrides/micro.yaml
"""
import sys
from pathlib import Path

import torch
from speechbrain.utils.distributed import run_on_main

from data_prep.fluent_speech import prepare_fluent_speech
from speechbrain_ext.downstream import DownstreamBrain
from speechbrain_ext.downstream.recipe import (audio_dataset, encode_label, label_encoder,
                                               load_recipe, require_folder, require_manifest,
                                               subset_options)

RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "valid", "test")


class IntentBrain(DownstreamBrain):
    """Logits ``[B, sum(slot_classes)]`` split into one block per slot."""

    def compute_objectives(self, logits, batch, stage):
        blocks = logits.split(list(self.hparams.slot_classes), dim=-1)
        loss, all_right = 0.0, None
        for slot, block in zip(self.hparams.slots, blocks):
            targets = getattr(batch, f"{slot}_encoded").data.flatten().to(self.device)
            loss = loss + torch.nn.functional.cross_entropy(block, targets)
            right = block.argmax(dim=-1) == targets
            all_right = right if all_right is None else all_right & right
        self.metrics["correct"] += int(all_right.sum())
        self.metrics["total"] += len(all_right)
        return loss

    def make_metrics(self, stage):
        return {"correct": 0, "total": 0}

    def stage_stats(self, stage):
        total = self.metrics["total"]
        return {"acc": 100.0 * self.metrics["correct"] / total} if total else {}


def dataio_prep(hparams):
    slots, counts = list(hparams["slots"]), list(hparams["slot_classes"])
    if len(slots) != len(counts) or sum(counts) != hparams["num_classes"]:
        raise ValueError(f"slot_classes {counts} must give one count per slot {slots} and sum "
                         f"to num_classes {hparams['num_classes']}")
    datasets = {}
    for split in SPLITS:
        csv_path = Path(hparams["prep_folder"]) / f"{split}.csv"
        require_manifest(csv_path, f"python -m data_prep.fluent_speech --data_folder "
                                   f"{hparams['data_folder']} --save_folder {hparams['prep_folder']}")
        # per label = per intent (the three slots' values together)
        datasets[split] = audio_dataset(csv_path, hparams["data_folder"], slots,
                                        **subset_options(hparams, split))
    for slot, count in zip(slots, counts):
        encoder = label_encoder(datasets, slot, expected=count,
                                save_path=Path(hparams["save_folder"]) / f"{slot}_encoder.txt")
        for dataset in datasets.values():
            encode_label(dataset, encoder, slot)
    return datasets


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the fluent_speech_commands_dataset folder")
    run_on_main(prepare_fluent_speech, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "skip_prep": hparams["skip_prep"]})
    datasets = dataio_prep(hparams)
    brain = IntentBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                        checkpointer=hparams["checkpointer"])
    loader = {"batch_size": hparams["eval_batch_size"], "num_workers": hparams["num_workers"]}
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs={**loader, "batch_size": hparams["batch_size"], "shuffle": True},
              valid_loader_kwargs=loader)
    brain.evaluate_best(datasets["test"], "test", loader)
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
