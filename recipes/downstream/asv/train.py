#!/usr/bin/env python3
"""Speaker verification (VoxCeleb1) on a frozen or fine-tuned backbone:
x-vector trained with AM-softmax on the training speakers, cosine scoring of
the trial pairs, EER (paper 003, Table 1 "ASV"; paper 001).

    python recipes/downstream/asv/train.py hparams/asv.yaml --backbone CKPT \\
        --data_folder /data/VoxCeleb1 [--freeze False]
    python recipes/downstream/asv/train.py hparams/asv.yaml --overrides_file ../overrides/micro.yaml
"""
import csv
import logging
import sys
from collections import Counter
from pathlib import Path

import torch
from speechbrain.dataio.dataloader import make_dataloader
from speechbrain.utils.distributed import run_on_main

from data_prep.manifests import write_csv
from data_prep.voxceleb import prepare_voxceleb
from speechbrain_ext.downstream import ClassificationBrain
from speechbrain_ext.downstream.metrics import cosine_scores, equal_error_rate
from speechbrain_ext.downstream.recipe import (audio_dataset, encode_labels, fit_brain, load_recipe,
                                               manifest_datasets, prepare_command, require_folder,
                                               require_manifest)
from speechbrain_ext.io.data import DataPreparationError

logger = logging.getLogger(__name__)
RECIPE_DIR = Path(__file__).resolve().parent


def split_train_valid(train_csv, out_folder, every):
    """Hold out every ``every``-th utterance of each speaker with 2+ of them
    (the valid set that picks the checkpoint; same speakers as train)."""
    with open(train_csv) as f:
        rows = list(csv.DictReader(f))
    per_speaker = Counter(row["spk_id"] for row in rows)
    seen, parts = Counter(), {"train": [], "valid": []}
    for row in rows:
        seen[row["spk_id"]] += 1
        held = per_speaker[row["spk_id"]] > 1 and seen[row["spk_id"]] % every == every // 2
        parts["valid" if held else "train"].append(row)
    paths = {}
    for split, part in parts.items():
        paths[split] = Path(out_folder) / f"asv_{split}.csv"
        write_csv(paths[split], part, list(rows[0].keys()))
    return paths


class VerificationBrain(ClassificationBrain):
    """Speaker classification for training; cosine scoring for the test."""

    def embed(self, dataset, loader_kwargs):
        """``{utterance id: embedding [E]}`` of a dataset."""
        self.on_evaluate_start(max_key=self.metric_key)  # the best checkpoint
        self.modules.eval()
        embeddings = {}
        with torch.no_grad():
            for batch in make_dataloader(dataset, **loader_kwargs):
                batch = batch.to(self.device)
                feats, lens = self.upstream_features(batch)
                for uid, emb in zip(batch.id, self.modules.head.embed(feats, lens)):
                    embeddings[uid] = emb.cpu()
        return embeddings

    def verify(self, test_set, trials_csv, loader_kwargs, max_trials=None):
        """EER (percent) over the trials whose two utterances are in
        ``test_set`` (the first ``max_trials`` of them); embeds only those
        utterances (kept in ``self.embeddings``) and writes the result."""
        available = set(test_set.data_ids)
        with open(trials_csv) as f:
            trials = [row for row in csv.DictReader(f)
                      if row["enrol"] in available and row["test"] in available]
        trials = trials[:max_trials] if max_trials else trials
        if not trials:
            raise ValueError(f"{trials_csv}: no trial has both utterances in the test set")
        needed = {t["enrol"] for t in trials} | {t["test"] for t in trials}
        if len(needed) < len(available):
            test_set = test_set.filtered_sorted(key_test={"id": lambda uid: uid in needed})
        embeddings = self.embeddings = self.embed(test_set, loader_kwargs)
        scores = cosine_scores(torch.stack([embeddings[t["enrol"]] for t in trials]),
                               torch.stack([embeddings[t["test"]] for t in trials]))
        labels = torch.tensor([int(t["label"]) for t in trials])
        eer = 100.0 * equal_error_rate(scores, labels)
        logger.info(f"ASV: EER {eer:.2f} % over {len(trials)} trials")
        self.write_result(self.hparams.result_metric, eer, "test", trials=len(trials))
        return eer


def main(argv):
    hparams, run_opts = load_recipe(argv, RECIPE_DIR)
    require_folder(hparams["data_folder"], "the VoxCeleb1 folder (wav/, veri_test2.txt)")
    run_on_main(prepare_voxceleb, kwargs={
        "data_folder": hparams["data_folder"], "save_folder": hparams["prep_folder"],
        "tasks": ["verification"], "skip_prep": hparams["skip_prep"]})
    prep = Path(hparams["prep_folder"])
    hint = prepare_command("voxceleb", hparams)
    for name in ("veri_train", "veri_test"):
        require_manifest(prep / f"{name}.csv", hint)
    if not (prep / "veri_trials.csv").is_file():
        raise DataPreparationError(f"trial list {prep / 'veri_trials.csv'} was not prepared; "
                                   f"run\n  {hint}")
    paths = split_train_valid(prep / "veri_train.csv", hparams["output_folder"], hparams["valid_every"])
    datasets = manifest_datasets(paths, hparams, ["spk_id"], hint)
    encode_labels(datasets, "spk_id", hparams["num_classes"],
                  Path(hparams["save_folder"]) / "label_encoder.txt")
    # micro scale: the first k utterances of each test speaker (the trials
    # are restricted to pairs of kept utterances)
    test_set = audio_dataset(prep / "veri_test.csv", hparams["data_folder"],
                             max_per_label=hparams["max_test_items_per_speaker"],
                             label_keys=["spk_id"], max_seconds=hparams["max_seconds"])
    brain = VerificationBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                              checkpointer=hparams["checkpointer"])
    loader = fit_brain(brain, hparams, datasets)
    brain.eer = brain.verify(test_set, prep / "veri_trials.csv", loader, hparams["max_trials"])
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
