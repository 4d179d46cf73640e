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

import speechbrain as sb
import torch
from speechbrain.utils.distributed import run_on_main

from data_prep.fluent_speech import prepare_fluent_speech
from speechbrain_ext.downstream import ClassificationBrain
from speechbrain_ext.downstream.recipe import (encode_labels, fit_brain, load_recipe,
                                               manifest_datasets, prepare_command, require_folder)

RECIPE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "valid", "test")


class IntentBrain(ClassificationBrain):
    """Logits ``[B, sum(slot_classes)]`` split into one block per slot; an
    utterance is right when all its slots are (``acc``, as ClassificationBrain)."""

    def compute_objectives(self, logits, batch, stage):
        blocks = logits.split(list(self.hparams.slot_classes), dim=-1)
        loss, all_right, slot_targets = 0.0, None, []
        for slot, block in zip(self.hparams.slots, blocks):
            targets = getattr(batch, f"{slot}_encoded").data.flatten().to(self.device)
            loss = loss + torch.nn.functional.cross_entropy(block, targets)
            right = block.argmax(dim=-1) == targets
            all_right = right if all_right is None else all_right & right
            slot_targets.append(targets)
        self.metrics["correct"] += int(all_right.sum())
        self.metrics["total"] += len(all_right)
        if stage != sb.Stage.TRAIN:  # an intent: its slots' values
            self.metrics["per_class"].update(zip(*(t.tolist() for t in slot_targets)))
        return loss


def dataio_prep(hparams):
    slots, counts = list(hparams["slots"]), list(hparams["slot_classes"])
    if len(slots) != len(counts) or sum(counts) != hparams["num_classes"]:
        raise ValueError(f"slot_classes {counts} must give one count per slot {slots} and sum "
                         f"to num_classes {hparams['num_classes']}")
    csv_paths = {split: Path(hparams["prep_folder"]) / f"{split}.csv" for split in SPLITS}
    # per label = per intent (the three slots' values together)
    datasets = manifest_datasets(csv_paths, hparams, slots, prepare_command("fluent_speech", hparams))
    for slot, count in zip(slots, counts):
        encode_labels(datasets, slot, count, Path(hparams["save_folder"]) / f"{slot}_encoder.txt")
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
    brain.evaluate_best(datasets["test"], "test", fit_brain(brain, hparams, datasets))
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
