"""Sequence (CTC) downstream tasks: building a task's datasets and
vocabulary, and :func:`run_ctc_task`, the driver every CTC recipe calls.

Four SUPERB-style tasks share this code (``recipes/downstream/{asr,pr,sf,
asr_zh}``); they differ only in the YAML: the vocabulary kind, the head's
size and the error-rate unit.

=================  ===================================  ================  =====
task               vocabulary kind (units)              head              score
=================  ===================================  ================  =====
ASR (LibriSpeech)  ``letters``: blank, A-Z, space, '    Linear + 2 BiLSTM WER
PR (LibriSpeech)   ``phonemes``: blank + 39 ARPAbet     Linear            PER
SF (Timers&Such)   ``slot_characters``: letters + tags  Linear + 2 BiLSTM CER
ASR-zh (CV zh-CN)  ``characters``: those of the text  Linear + 2 BiLSTM CER
=================  ===================================  ================  =====

Where the pieces live:

* ``downstream.vocabulary``: the vocabularies (``CTCVocabulary`` of every
  kind; the ASR one is ``LetterVocabulary``, the CTC fine-tuning
  recipe's, so an ASR head reads like a fine-tuned model's output layer);
* ``downstream.ctc_head``: ``CTCHead`` and ``ctc_loss``;
* ``downstream.decoding.greedy``: best-path decoding;
* ``downstream.metrics``: what WER / CER / PER count (``scoring_units``);
* ``downstream.slots``: SF's slot-value CER and slot-type F1;
* ``downstream.ctc_brain``: ``CTCDownstreamBrain`` (training, decoding
  and scoring);
* this module: datasets, checks before training, the driver.

Example
-------
>>> import torch
>>> from speechbrain_ext.downstream.ctc_head import CTCHead
>>> from speechbrain_ext.downstream.decoding.greedy import greedy_ctc_texts
>>> vocab = CTCVocabulary.build("letters")
>>> head = CTCHead(input_size=64, num_tokens=len(vocab), project_dim=32,
...                rnn_layers=2, rnn_size=16)
>>> log_probs = head(torch.randn(2, 50, 64), torch.tensor([50, 30]))
>>> log_probs.shape   # [batch, frames, tokens]
torch.Size([2, 50, 29])
>>> hyps = greedy_ctc_texts(log_probs, torch.tensor([50, 30]), vocab)
>>> len(hyps), all(set(h) <= set(vocab.labels) for h in hyps)
(2, True)
"""
import logging
import time
from pathlib import Path

import torch
from speechbrain.utils.distributed import if_main_process

from speechbrain_ext.downstream.ctc_brain import CTCDownstreamBrain
from speechbrain_ext.downstream.recipe import audio_dataset, require_manifest
from speechbrain_ext.downstream.vocabulary import CTCVocabulary
from speechbrain_ext.io.data import read_csv

logger = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


def ctc_datasets(hparams, csv_files, text_column):
    """Train / valid / test datasets of a CTC task and its vocabulary.

    ``csv_files`` maps ``train``, ``valid``, ``test`` to manifests; the
    transcripts are read from ``text_column``. The vocabulary is the YAML's
    ``vocabulary`` kind: fixed for ``letters`` / ``phonemes``, otherwise the
    units of the transcripts of ``vocabulary_splits`` (default: train; whole
    manifests, also when ``max_*_items`` trains on a subset).
    Before any training, every split is checked against the vocabulary (one
    error listing every utterance with an unknown unit) and the vocabulary is
    compared with the one saved by the run being resumed. Each dataset
    provides ``id``, ``sig``, ``text`` and ``tokens``; ``max_train_items`` /
    ``max_eval_items`` keep every k-th utterance (micro scale; see
    ``recipe.audio_dataset``).
    """
    datasets = {}
    for split in SPLITS:
        limit = hparams.get("max_train_items" if split == "train" else "max_eval_items")
        datasets[split] = audio_dataset(csv_files[split], hparams["data_folder"], [text_column],
                                        max_items=limit)
    # the vocabulary and its check cover the whole manifests, not the subsets
    rows = {split: [{"ID": row["ID"], "text": row[text_column]} for row in read_csv(csv_files[split])]
            for split in SPLITS}
    vocab_splits = hparams.get("vocabulary_splits") or ["train"]
    unknown = [s for s in vocab_splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"vocabulary_splits: unknown split(s) {unknown}; expected some of {SPLITS}")
    vocab = CTCVocabulary.build(hparams["vocabulary"],
                                [r["text"] for s in vocab_splits for r in rows[s]])
    for split in SPLITS:
        vocab.check_labels(rows[split], "text", f"{split} manifest {csv_files[split]} "
                                                f"(column {text_column!r})")
    vocab_file = Path(hparams["save_folder"]) / "label_encoder.txt"
    if vocab_file.is_file():
        vocab.check_saved(vocab_file)
    elif if_main_process():
        vocab.save(vocab_file)

    def text_pipeline(text):
        yield text
        yield torch.LongTensor(vocab.encode(text))

    for dataset in datasets.values():
        dataset.add_dynamic_item(text_pipeline, takes=[text_column], provides=["text", "tokens"])
        dataset.set_output_keys(["id", "sig", "text", "tokens"])
    return datasets, vocab


def check_same_upstream(save_folder, upstream):
    """Refuse to resume, in ``save_folder``, a run made on another upstream.

    The output folder is named by task and freeze mode only, so a second
    backbone (or the random-init baseline) given the same ``output_root``
    would otherwise silently recover the first one's head and report it.
    The identity is ``upstream.checkpoint_identity`` of the weights as
    loaded (before any fine-tuning), written next to the checkpoints."""
    from speechbrain_ext.downstream.upstream import checkpoint_identity

    identity = checkpoint_identity(upstream.backbone)
    record = Path(save_folder) / "upstream_identity.txt"
    if record.is_file():
        saved = record.read_text().split("\n", 1)
        if saved[0].strip() != identity:
            raise ValueError(
                f"{save_folder} holds a run on another upstream ({saved[1].strip() or saved[0]}), "
                f"not {'a random init of ' if upstream.random_init else ''}{upstream.source}; "
                "give this run its own output_root (or output_folder)")
    elif if_main_process():
        record.parent.mkdir(parents=True, exist_ok=True)
        origin = ("random init shaped like " if upstream.random_init else "") + upstream.source
        record.write_text(f"{identity}\n{origin}\n")


def run_ctc_task(hparams, run_opts, csv_files, prepare_command):
    """Train a CTC head on the upstream, pick the checkpoint best on valid,
    evaluate it on test and write the result. Returns the brain.

    ``csv_files`` maps ``train``, ``valid``, ``test`` to the task's manifests
    (a missing one is an error naming ``prepare_command``); the transcripts
    are the YAML's ``text_column``."""
    for split in SPLITS:
        require_manifest(csv_files[split], prepare_command)
    datasets, vocab = ctc_datasets(hparams, csv_files, hparams["text_column"])
    upstream = hparams["upstream"]
    check_same_upstream(hparams["save_folder"], upstream)
    head = hparams["head"](input_size=upstream.output_dim, num_tokens=len(vocab))
    logger.info(f"{hparams['task']}: {vocab}, head {sum(p.numel() for p in head.parameters())} "
                f"parameters, train/valid/test {[len(datasets[s]) for s in SPLITS]} utterances")
    brain = CTCDownstreamBrain(vocab=vocab, modules={"upstream": upstream, "head": head},
                               hparams=hparams, run_opts=run_opts,
                               checkpointer=hparams["checkpointer"])
    start = time.time()
    brain.fit(hparams["epoch_counter"], datasets["train"], datasets["valid"],
              train_loader_kwargs=hparams["train_dataloader_opts"],
              valid_loader_kwargs=hparams["valid_dataloader_opts"])
    brain.evaluate_best(datasets["test"], "test", hparams["test_dataloader_opts"])
    logger.info(f"{hparams['task']}: {brain.optimizer_step} steps, {hparams['metric']} "
                f"{brain.test_stats[hparams['metric']]:.2f} on test, {time.time() - start:.0f} s")
    return brain
