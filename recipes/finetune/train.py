#!/usr/bin/env python3
"""Full CTC fine-tuning of a pre-trained backbone for letter ASR, then greedy
and n-gram LM decoding of dev and test (papers 000 and 001).

    python recipes/finetune/train.py hparams/ll10h.yaml --pretrained results/pretrain/.../save \\
        --data_folder /data/LibriSpeech --librilight_folder /data/librispeech_finetuning \\
        --lm_path /data/lm/4-gram.arpa
    python recipes/finetune/train.py hparams/ll10min.yaml --overrides_file overrides/micro.yaml \\
        --pretrained results/runs/demo_nc_5s/save
    python recipes/finetune/train.py hparams/ls100.yaml --overrides_file overrides/paper000_ls100.yaml ...
    python recipes/finetune/train.py hparams/ted10h.yaml --pretrained PATH \\
        --corpus_folder /data/TEDLIUM_release-3

``--pretrained`` takes anything ``speechbrain_ext.interop.loading.init_backbone``
reads (our checkpoints, HF folders, fairseq ``.pt``); ``--pretrained=null``
fine-tunes a random initialisation. ``train_corpus`` names the corpus:
``librispeech`` / ``librilight`` (``data_folder``, ``librilight_folder``) or
a transfer corpus of paper 002's Table 5, ``tedlium3``, ``voxpopuli``,
``fisher_swbd`` (``corpus_folder``; its ``data_prep`` preparation with the
YAML's ``prep_options``, train and evaluation splits from the same corpus;
a manifest row may be a sample range of a longer recording, its
``segments`` column). Without ``lm_path`` an
interpolated Kneser-Ney LM of ``lm_order`` is built from the training
transcripts (for corpora without a published LM). The error rates of every
evaluation split, greedy, beam search without an LM (``no_lm_beam_size``,
key ``beam_no_lm``) and with the LM (weight and word insertion tuned on
``tune_split``), go to ``<output_folder>/wer.json``, with the run's
``setting`` and ``seed`` (``recipes/finetune/aggregate.py`` reports mean and
standard deviation over seeds).
"""
import json
import logging
import os
import sys
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.distributed import if_main_process, run_on_main

from data_prep.fisher_swbd import csv_name as fisher_swbd_csv, prepare_fisher_swbd
from data_prep.librilight import prepare_librilight
from data_prep.librispeech import expand_splits, prepare_librispeech
from data_prep.tedlium3 import csv_name as tedlium3_csv, prepare_tedlium3
from data_prep.voxpopuli import csv_name as voxpopuli_csv, prepare_voxpopuli
from speechbrain_ext.downstream.decoding.lm_decoding import (CTCBeamSearch, LexiconBeamSearch,
                                                             decode_splits, greedy_decode)
from speechbrain_ext.downstream.decoding.ngram import build_kneser_ney, write_arpa
from speechbrain_ext.downstream.finetune import check_vocabulary
from speechbrain_ext.downstream.metrics import error_rates
from speechbrain_ext.io.data import DATA_ROOT_KEY, DataPreparationError, read_piece
from speechbrain_ext.training.batching import DurationBatchSampler
from speechbrain_ext.training.distributed import unwrap
from speechbrain_ext.training.random_streams import seed_batch
from speechbrain_ext.training.recipe_cli import parse_arguments, resolve_path
from speechbrain_ext.training.schedules import set_learning_rate

logger = logging.getLogger(__name__)
RECIPE_DIR = Path(__file__).resolve().parent
# paper 002 Table 5's transfer corpora: train_corpus -> (preparation, manifest
# name of a split given prep_options); every split is read from corpus_folder
# (fisher_swbd: from prep_options' audio_folder, the 16 kHz sides it writes)
TRANSFER_CORPORA = {
    "tedlium3": (prepare_tedlium3, lambda split, options: tedlium3_csv(split)),
    "voxpopuli": (prepare_voxpopuli, lambda split, options: voxpopuli_csv(split, options.get("language", "en"))),
    "fisher_swbd": (prepare_fisher_swbd, lambda split, options: fisher_swbd_csv(split)),
}


def lowest_error(checkpoint):
    """Checkpoint importance: lowest dev WER, ties (e.g. 100 % early in a
    short run) broken by CER, then by the later update; a checkpoint saved
    mid-epoch (no dev WER) comes last."""
    meta = checkpoint.meta
    return (-meta.get("WER", float("inf")), -meta.get("CER", float("inf")), meta.get("update", 0))


class FineTuneBrain(sb.core.Brain):
    """CTC loss over the letter vocabulary; greedy WER / CER on valid and test."""

    @property
    def lr_schedule(self):
        """The schedule named by ``schedule`` among ``lr_schedules``."""
        if self.hparams.schedule not in self.hparams.lr_schedules:
            raise ValueError(f"schedule: {self.hparams.schedule!r} is not one of "
                             f"{sorted(self.hparams.lr_schedules)} (lr_schedules in the YAML)")
        return self.hparams.lr_schedules[self.hparams.schedule]

    def on_fit_start(self):
        super().on_fit_start()  # recovers the latest checkpoint, if any
        unwrap(self.modules.model).set_num_updates(self.optimizer_step)
        set_learning_rate(self.optimizer, self.lr_schedule(self.optimizer_step))

    def fit_batch(self, batch):
        # the training masks (time and channel), dropout and LayerDrop draw
        # from torch's global generator: reseeded per batch from (seed, rank,
        # epoch, batch), as in the pre-training recipe, so that a resumed
        # run draws what the uninterrupted one drew
        seed_batch(self.hparams.seed, "train", self.hparams.epoch_counter.current, self.step)
        return super().fit_batch(batch)

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wav, wav_lens = batch.sig
        return self.modules.model(wav, wav_lens)

    def compute_objectives(self, predictions, batch, stage):
        log_probs, frames = predictions
        tokens, token_lens = batch.tokens
        targets = torch.round(token_lens * tokens.shape[1]).long()
        # summed over the batch and divided by the number of utterances
        # (fairseq's CTC criterion with sentence_avg)
        loss = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1), tokens, frames, targets, blank=self.hparams.vocabulary.blank_index,
            reduction="sum", zero_infinity=True) / log_probs.shape[0]
        if stage != sb.Stage.TRAIN:
            self.hyps += greedy_decode(log_probs, frames.tolist(), self.hparams.vocabulary)
            self.refs += list(batch.wrd)
        return loss

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if not should_step:
            return
        unwrap(self.modules.model).set_num_updates(self.optimizer_step)
        lr = self.lr_schedule(self.optimizer_step)
        set_learning_rate(self.optimizer, lr)
        if self.optimizer_step % self.hparams.log_interval == 0 or self.optimizer_step == 1:
            self.hparams.train_logger.log_stats(
                stats_meta={"step": self.optimizer_step},
                train_stats={"loss": float(loss.detach()), "lr": lr})

    def on_stage_start(self, stage, epoch=None):
        self.hyps, self.refs = [], []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss, **error_rates(self.refs, self.hyps)}
        self.last_stats = stats
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "update": self.optimizer_step},
                train_stats={"loss": self.train_loss}, valid_stats=stats)
            self.checkpointer.save_and_keep_only(
                meta={"WER": stats["WER"], "CER": stats["CER"], "loss": stage_loss,
                      "update": self.optimizer_step},
                importance_keys=[lowest_error], num_to_keep=self.hparams.checkpoints_to_keep)
        else:
            self.hparams.train_logger.log_stats(stats_meta={"test": True}, test_stats=stats)

    @torch.no_grad()
    def emissions(self, dataset):
        """Log-probabilities ``[utterances, frames, tokens]`` (padded, CPU),
        frames ``[utterances]`` and reference texts of a whole dataset."""
        self.modules.eval()
        loader = sb.dataio.dataloader.make_dataloader(
            dataset, batch_size=self.hparams.valid_batch_size, collate_fn=PaddedBatch)
        outputs, frames, refs = [], [], []
        for batch in loader:
            log_probs, lengths = self.compute_forward(batch, sb.Stage.TEST)
            outputs += [lp[:n].cpu() for lp, n in zip(log_probs, lengths.tolist())]
            frames += lengths.tolist()
            refs += list(batch.wrd)
        padded = torch.nn.utils.rnn.pad_sequence(outputs, batch_first=True)
        return padded, torch.tensor(frames), refs


def prepare_data(hparams):
    """CSV manifests of the training set and evaluation splits with the
    folder their ``$data_root`` names; returns ``((train_csv, root),
    {split: (csv, root)})``."""
    prep = Path(hparams["prep_folder"])
    eval_splits = list(hparams["eval_splits"])
    corpus = hparams["train_corpus"]
    if corpus in TRANSFER_CORPORA:
        prepare, manifest = TRANSFER_CORPORA[corpus]
        options = dict(hparams.get("prep_options") or {})
        run_on_main(prepare, kwargs={
            "data_folder": hparams["corpus_folder"], "save_folder": str(prep),
            "splits": [hparams["train_splits"], *eval_splits], "skip_prep": hparams["skip_prep"],
            "progress": False, **options})
        root = options.get("audio_folder", hparams["corpus_folder"])
        return ((prep / manifest(hparams["train_splits"], options), root),
                {s: (prep / manifest(s, options), root) for s in eval_splits})
    if corpus == "librispeech":
        train_splits = expand_splits(hparams["train_splits"])
        merge = "train" if len(train_splits) > 1 else None
        run_on_main(prepare_librispeech, kwargs={
            "data_folder": hparams["data_folder"], "save_folder": str(prep),
            "splits": train_splits + eval_splits, "skip_prep": hparams["skip_prep"],
            "merge_name": merge, "progress": False})
        train_csv = prep / f"{merge or train_splits[0]}.csv"
        train_root = hparams["data_folder"]
    elif corpus == "librilight":
        run_on_main(prepare_librilight, kwargs={
            "data_folder": hparams["librilight_folder"], "save_folder": str(prep),
            "subsets": [hparams["train_splits"]], "skip_prep": hparams["skip_prep"],
            "progress": False})
        run_on_main(prepare_librispeech, kwargs={
            "data_folder": hparams["data_folder"], "save_folder": str(prep),
            "splits": eval_splits, "skip_prep": hparams["skip_prep"], "progress": False})
        train_csv = prep / f"librilight-{hparams['train_splits']}.csv"
        train_root = hparams["librilight_folder"]
    else:
        raise ValueError(f"train_corpus must be one of {['librispeech', 'librilight', *TRANSFER_CORPORA]}, "
                         f"got {corpus!r}")
    return (train_csv, train_root), {s: (prep / f"{s}.csv", hparams["data_folder"]) for s in eval_splits}


def make_dataset(csv_path, data_root, vocabulary, limit=None, max_seconds=None):
    """Dataset yielding ``sig`` (waveform), ``wrd`` and ``tokens``; a
    transcript the vocabulary cannot encode fails here, naming the utterance.
    ``max_seconds`` drops longer utterances (SpeechBrain's
    ``avoid_if_longer_than``; for training sets only)."""
    dataset = DynamicItemDataset.from_csv(str(csv_path), replacements={DATA_ROOT_KEY: str(data_root)})
    if max_seconds:
        dataset = dataset.filtered_sorted(key_max_value={"duration": float(max_seconds)})
        if not dataset.data_ids:
            raise DataPreparationError(f"{csv_path}: no utterance is at most max_train_seconds="
                                       f"{max_seconds} s long")
    if limit:
        dataset = dataset.filtered_sorted(select_n=int(limit))
    for uid in dataset.data_ids:  # check every transcript before training
        vocabulary.encode(dataset.data[uid]["wrd"], utterance_id=f"{uid} ({csv_path})")

    # a row of a segmented corpus (TED-LIUM 3, Fisher + Switchboard) is a
    # sample range of a talk / conversation side: its segments column
    segmented = "segments" in dataset.data[dataset.data_ids[0]] if dataset.data_ids else False

    @sb.utils.data_pipeline.takes("segments" if segmented else "wav")
    @sb.utils.data_pipeline.provides("sig")
    def read_audio(wav):
        return read_piece(wav) if segmented else sb.dataio.dataio.read_audio(wav)

    @sb.utils.data_pipeline.takes("id", "wrd")
    @sb.utils.data_pipeline.provides("tokens")
    def encode(uid, wrd):
        return torch.LongTensor(vocabulary.encode(wrd, utterance_id=uid))

    dataset.add_dynamic_item(read_audio)
    dataset.add_dynamic_item(encode)
    dataset.set_output_keys(["id", "sig", "wrd", "tokens"])
    return dataset


def language_model(hparams, train_texts):
    """The LM path: ``lm_path``, or a Kneser-Ney ARPA built from the training
    transcripts (``lm_order``) when none is given."""
    if hparams.get("lm_path"):
        return str(hparams["lm_path"])
    path = Path(hparams["output_folder"]) / f"lm_{hparams['lm_order']}gram.arpa"
    if if_main_process():
        stats = write_arpa(build_kneser_ney(train_texts, hparams["lm_order"]), path)
        logger.info(f"built a {hparams['lm_order']}-gram LM of the training transcripts: {stats}")
    return str(path)


def main(argv=None):
    hparams_file, run_opts, overrides = parse_arguments(
        sys.argv[1:] if argv is None else argv, RECIPE_DIR,
        path_keys=("data_folder", "librilight_folder", "corpus_folder", "pretrained", "lm_path"))
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file) as f:
        hparams = load_hyperpyyaml(f, overrides)
    for key in ("data_folder", "librilight_folder", "corpus_folder"):
        if hparams.get(key):
            # normpath first: a corpus_folder made of <data_folder>/../<corpus> (the
            # transfer YAMLs) need not have data_folder on disk
            hparams[key] = str(resolve_path(os.path.normpath(hparams[key]), [RECIPE_DIR]))
    # the folder the evaluation splits come from
    folder_key = "corpus_folder" if hparams["train_corpus"] in TRANSFER_CORPORA else "data_folder"
    if not hparams.get(folder_key) or not Path(hparams[folder_key]).is_dir():
        expected = ("the LibriSpeech folder holding dev/test splits" if folder_key == "data_folder"
                    else f"the {hparams['train_corpus']} corpus folder")
        raise DataPreparationError(f"{folder_key} {hparams.get(folder_key)} does not exist (expected {expected})")
    sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file,
                                   overrides=overrides)
    vocabulary = hparams["vocabulary"]
    model = hparams["model"]
    # the starting point, stated once (a recovered checkpoint is logged by SpeechBrain after it)
    logger.info(f"fine-tuning the backbone of {hparams['pretrained']} (--pretrained)"
                if hparams["pretrained"] else
                f"fine-tuning a random initialisation (--pretrained=null, seed {hparams.get('seed')})")
    check_vocabulary(model, vocabulary)
    (train_csv, train_root), eval_csvs = prepare_data(hparams)
    limit = hparams.get("max_utterances")
    train_set = make_dataset(train_csv, train_root, vocabulary, limit, hparams.get("max_train_seconds"))
    eval_sets = {s: make_dataset(p, root, vocabulary, limit) for s, (p, root) in eval_csvs.items()}
    valid_split = hparams["tune_split"]

    if hparams.get("batch_seconds"):
        # every utterance every epoch; one longer than the budget is a batch alone
        sampler = DurationBatchSampler(
            [float(train_set.data[i]["duration"]) for i in train_set.data_ids],
            max_batch_length=hparams["batch_seconds"], num_buckets=hparams["num_buckets"],
            seed=hparams["seed"], drop_last=False, allow_oversized=True)
        train_kwargs = {"batch_sampler": sampler}
    else:
        train_kwargs = {"batch_size": hparams["batch_size"], "shuffle": True}
    train_kwargs["num_workers"] = hparams["num_workers"]

    brain = FineTuneBrain(modules={"model": model}, opt_class=hparams["opt_class"],
                          hparams=hparams, run_opts=run_opts, checkpointer=hparams["checkpointer"])
    brain.fit(hparams["epoch_counter"], train_set, eval_sets[valid_split],
              train_loader_kwargs=train_kwargs,
              valid_loader_kwargs={"batch_size": hparams["valid_batch_size"]})

    # evaluation with the best checkpoint (lowest dev WER, then CER)
    brain.checkpointer.recover_if_possible(importance_key=lowest_error)
    splits = {name: brain.emissions(dataset) for name, dataset in eval_sets.items()}
    decoder = None
    if hparams["lm_decoding"]:
        # every transcript of the training manifest, also those of utterances
        # too long to train on (max_train_seconds): text is cheap
        train_texts = [entry["wrd"] for entry in train_set.data.values()]
        lm_path = language_model(hparams, train_texts)
        words = {w for text in train_texts for w in vocabulary.to_words(vocabulary.normalize(text))}
        decoder = LexiconBeamSearch(vocabulary, words, lm_path=lm_path, beam_size=hparams["beam_size"],
                                    beam_threshold=hparams["beam_threshold"])
    # lexicon-free beam search without an LM (paper 000: beam 50 with and
    # without the LM); no_lm_beam_size: null skips it
    no_lm_beam = hparams.get("no_lm_beam_size", 50)
    beam_decoder = CTCBeamSearch(vocabulary, beam_size=no_lm_beam,
                                 beam_threshold=hparams["beam_threshold"]) if no_lm_beam else None
    results = decode_splits(vocabulary, {valid_split: splits[valid_split], **splits}, decoder,
                            hparams["lm_weights"], hparams["word_scores"], tune_on=valid_split,
                            beam_decoder=beam_decoder)
    if results["tuned"] is not None:
        results["tuned"].pop("grid")
    # setting and seed identify the run: recipes/finetune/aggregate.py averages
    # the wer.json of runs that differ only by seed
    results.update(updates=brain.optimizer_step, pretrained=str(hparams["pretrained"]),
                   setting=hparams.get("setting"), seed=hparams.get("seed"))
    if if_main_process():
        path = Path(hparams["output_folder"]) / "wer.json"
        path.write_text(json.dumps(results, indent=1))
        logger.info(f"error rates (greedy / beam without LM / LM) written to {path}: "
                    f"{json.dumps(results)}")
    return brain, results


if __name__ == "__main__":
    main()
