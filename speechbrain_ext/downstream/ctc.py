"""Sequence (CTC) downstream tasks: token vocabularies, the CTC head,
greedy decoding and error rates.

Four SUPERB-style tasks share this module (``recipes/downstream/{asr,pr,
sf,asr_zh}``); they differ only in the YAML: the vocabulary kind, the head's
size and the error-rate unit.

=================  ===================================  ================  =====
task               vocabulary kind (units)              head              score
=================  ===================================  ================  =====
ASR (LibriSpeech)  ``letters``: blank, A-Z, space, '    Linear + 2 BiLSTM WER
PR (LibriSpeech)   ``phonemes``: blank + 39 ARPAbet     Linear            PER
SF (Timers&Such)   ``slot_characters``: letters + tags  Linear + 2 BiLSTM CER
ASR-zh (CV zh-CN)  ``characters``: those of the text  Linear + 2 BiLSTM CER
=================  ===================================  ================  =====

The letter vocabulary is ``speechbrain_ext.downstream.vocabulary.LetterVocabulary``'s
(same symbols, same indices), so an ASR head reads like a CTC fine-tuned
model's output layer.

Example
-------
>>> import torch
>>> vocab = CTCVocabulary.letters()
>>> head = CTCHead(input_size=64, num_tokens=len(vocab), project_dim=32,
...                rnn_layers=2, rnn_size=16)
>>> log_probs = head(torch.randn(2, 50, 64), torch.tensor([50, 30]))
>>> log_probs.shape   # [batch, frames, tokens]
torch.Size([2, 50, 29])
>>> hyps = greedy_ctc_decode(log_probs, torch.tensor([50, 30]), vocab.blank_index)
>>> len(hyps), all(vocab.blank_index not in h for h in hyps)
(2, True)
"""
import logging
import re
import time
import unicodedata
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.dataio.encoder import CTCTextEncoder
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.metric_stats import ErrorRateStats
from torch import nn

from speechbrain_ext.downstream.brain import DownstreamBrain
from speechbrain_ext.downstream.recipe import audio_dataset, require_manifest
from speechbrain_ext.downstream.vocabulary import (BLANK, LetterVocabulary, VocabularyError,
                                                   collapse_repeats)
from speechbrain_ext.io.data import read_csv

logger = logging.getLogger(__name__)
UPSTREAM_SAMPLE_RATE = 16000
SPLITS = ("train", "valid", "test")

VOCABULARY_KINDS = ("letters", "phonemes", "characters", "slot_characters")
SPACE = " "
SLOT_TAG = re.compile(r"^</?[A-Za-z0-9_]+>$")
_TAG_SPLIT = re.compile(r"(</?[A-Za-z0-9_]+>)")


def text_to_units(text, kind):
    """The CTC units of a transcript for a vocabulary kind.

    ``letters``: LibriSpeech normalisation (upper case, single spaces), one
    unit per character. ``phonemes``: blank-separated symbols. ``characters``
    (Mandarin): whitespace and punctuation dropped (Common Voice sentences
    end with ``。``, which nobody says), Latin letters upper-cased.
    ``slot_characters``: the words' characters and single spaces, every slot
    tag (``<minutes>``, ``</minutes>``) one unit.

    >>> text_to_units("it's ok", "letters")
    ['I', 'T', "'", 'S', ' ', 'O', 'K']
    >>> text_to_units("HH AH L OW", "phonemes")
    ['HH', 'AH', 'L', 'OW']
    >>> text_to_units("老张, 想去北京。", "characters")
    ['老', '张', '想', '去', '北', '京']
    >>> text_to_units("FOR <minutes> TEN </minutes>", "slot_characters")
    ['F', 'O', 'R', ' ', '<minutes>', ' ', 'T', 'E', 'N', ' ', '</minutes>']
    """
    if kind == "letters":
        return list(LetterVocabulary.normalize(text))
    if kind == "phonemes":
        return str(text).upper().split()
    if kind == "characters":
        text = unicodedata.normalize("NFKC", str(text)).upper()
        return [c for c in text if not c.isspace()
                and not unicodedata.category(c).startswith(("P", "S"))]
    if kind == "slot_characters":
        units = []
        for word in str(text).split():
            if units:
                units.append(SPACE)
            # a tag glued to a word ("TEN</minutes>") is still one unit
            for piece in _TAG_SPLIT.split(word):
                units.extend([piece] if SLOT_TAG.match(piece) else list(piece.upper()))
        return units
    raise ValueError(f"unknown vocabulary kind {kind!r}; expected one of {VOCABULARY_KINDS}")


def units_to_text(units, kind):
    """Inverse of :func:`text_to_units` (up to normalisation).

    >>> units_to_text(['HH', 'AH'], "phonemes"), units_to_text(['A', ' ', 'B'], "letters")
    ('HH AH', 'A B')
    """
    if kind == "phonemes":
        return " ".join(units)
    return "".join(units)


class CTCVocabulary:
    """Blank (index 0) + the labels of one vocabulary kind, on SpeechBrain's
    ``CTCTextEncoder``.

    Arguments
    ---------
    labels : sequence of str
        The units after the blank, in index order.
    kind : str
        One of ``VOCABULARY_KINDS`` (how text is cut into units).

    Example
    -------
    >>> vocab = CTCVocabulary.from_transcripts(["AB BA", "ABC"], "slot_characters")
    >>> vocab.labels
    ['<blank>', ' ', 'A', 'B', 'C']
    >>> vocab.encode("CAB")
    [4, 2, 3]
    >>> vocab.decode_ctc([0, 4, 4, 0, 2, 0, 2, 3])   # merge repeats, drop blanks
    'CAAB'
    """

    def __init__(self, labels, kind):
        if kind not in VOCABULARY_KINDS:
            raise ValueError(f"unknown vocabulary kind {kind!r}; expected one of {VOCABULARY_KINDS}")
        labels = list(labels)
        if len(set(labels)) != len(labels) or BLANK in labels or not labels:
            raise VocabularyError(f"labels must be distinct, non-empty and exclude {BLANK!r}")
        self.kind = kind
        self.encoder = CTCTextEncoder()
        self.encoder.insert_blank(BLANK, index=0)  # first: inserting moves an occupied index
        self.encoder.update_from_iterable(labels, sequence_input=False)
        self.encoder.expect_len(len(labels) + 1)
        self.blank_index = self.encoder.get_blank_index()

    @classmethod
    def letters(cls):
        """The 29 symbols of ``LetterVocabulary`` in its index order."""
        return cls(LetterVocabulary().symbols[1:], "letters")

    @classmethod
    def phonemes(cls):
        """Blank + the 39 ARPAbet phonemes of ``data_prep.librispeech_phonemes``."""
        from speechbrain_ext.downstream.vocabulary import ARPABET

        return cls(ARPABET, "phonemes")

    @classmethod
    def from_transcripts(cls, texts, kind):
        """Blank + every unit found in ``texts``, sorted (deterministic)."""
        units = set()
        for text in texts:
            units.update(text_to_units(text, kind))
        if not units:
            raise VocabularyError(f"no {kind} found in the transcripts")
        return cls(sorted(units), kind)

    @classmethod
    def build(cls, kind, texts=()):
        """The fixed vocabulary of ``letters`` / ``phonemes``; the others are
        read from ``texts``."""
        if kind == "letters":
            return cls.letters()
        if kind == "phonemes":
            return cls.phonemes()
        return cls.from_transcripts(texts, kind)

    @property
    def labels(self):
        return [self.encoder.ind2lab[i] for i in range(len(self))]

    def __len__(self):
        return len(self.encoder)

    def __eq__(self, other):
        return isinstance(other, CTCVocabulary) and (self.kind, self.labels) == (other.kind, other.labels)

    def __repr__(self):
        return f"CTCVocabulary({self.kind}, {len(self)} tokens)"

    def units(self, text):
        return text_to_units(text, self.kind)

    def unknown_units(self, text):
        """Units of ``text`` that are not in the vocabulary (in order, once)."""
        return list(dict.fromkeys(u for u in self.units(text) if u not in self.encoder.lab2ind))

    def encode(self, text, utterance_id=None):
        """Token indices of a transcript; a clear error names the utterance
        for an empty transcript or a unit the vocabulary has never seen."""
        where = f"utterance {utterance_id}" if utterance_id is not None else "transcript"
        units = self.units(text)
        if not units:
            raise VocabularyError(f"{where}: empty transcript ({text!r}); CTC needs at least one token")
        unknown = self.unknown_units(text)
        if unknown:
            raise VocabularyError(f"{where}: {unknown} not in the {len(self)}-token {self.kind} "
                                  f"vocabulary (transcript {text!r})")
        return self.encoder.encode_sequence(units)

    def decode_units(self, ids):
        """Units of a token sequence (blanks dropped, no merging)."""
        return [self.encoder.ind2lab[int(i)] for i in ids if int(i) != self.blank_index]

    def decode_ctc(self, ids):
        """Text of a frame-level CTC path: merge repeats, drop blanks."""
        return units_to_text(self.decode_units(collapse_repeats(ids)), self.kind)

    def check_labels(self, rows, column, where):
        """Raise one error listing every utterance of ``rows`` (dicts with
        ``ID`` and ``column``) holding a unit outside the vocabulary."""
        bad = []
        for row in rows:
            unknown = self.unknown_units(row[column])
            if unknown or not self.units(row[column]):
                bad.append(f"{row['ID']}: {unknown or 'empty transcript'}")
        if bad:
            shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
            raise VocabularyError(
                f"{where}: {len(bad)} utterance(s) hold {self.kind} the {len(self)}-token "
                f"vocabulary has never seen (column {column!r}):\n  {shown}")

    def save(self, path):
        """Write the labels (SpeechBrain's ``label_encoder.txt`` format)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.encoder.save(path)

    def check_saved(self, path):
        """Raise if a vocabulary saved at ``path`` (e.g. by the run being
        resumed) differs from this one."""
        saved = CTCTextEncoder()
        saved.load(path)
        if [saved.ind2lab[i] for i in range(len(saved))] != self.labels:
            raise VocabularyError(f"{path}: the saved vocabulary ({len(saved)} tokens) differs "
                                  f"from the one built now ({len(self)} tokens); the checkpoint in "
                                  "this output folder was trained on other transcripts")


def greedy_ctc_decode(log_probs, frame_lengths, blank_index=0):
    """Best-path CTC decoding.

    Arguments
    ---------
    log_probs : torch.Tensor
        ``[batch, frames, tokens]`` scores (any monotone transform of the
        posteriors).
    frame_lengths : torch.Tensor
        ``[batch]`` valid frames of each utterance.
    blank_index : int

    Returns
    -------
    list of list of int: per utterance, the argmax path with repeats merged
    and blanks dropped.

    >>> scores = torch.tensor([[[0., 1.], [0., 1.], [1., 0.], [0., 1.], [0., 1.]]])
    >>> greedy_ctc_decode(scores, torch.tensor([5]))
    [[1, 1]]
    >>> greedy_ctc_decode(scores, torch.tensor([2]))
    [[1]]
    """
    best = log_probs.argmax(dim=-1).cpu()
    return [[i for i in collapse_repeats(best[b, :int(n)]) if i != blank_index]
            for b, n in enumerate(frame_lengths.tolist())]


class CTCHead(nn.Module):
    """Frame classifier for CTC: Linear projection, optional bidirectional
    LSTM stack, Linear to the tokens, log-softmax.

    ``rnn_layers=0`` is SUPERB's PR head (two linear maps, i.e. a linear
    head); ``rnn_layers=2, rnn_size=1024`` is the ASR / SF / ASR-zh head
    (s3prl: project to 1024, 2 BiLSTM layers of 1024 per direction, dropout
    0.2 after each). Padded frames are packed away so that the backward
    direction starts at each utterance's last real frame.

    Arguments
    ---------
    input_size : int
        Feature size of the upstream representation.
    num_tokens : int
        Output classes (blank included).
    project_dim : int
        Size of the first linear projection.
    rnn_layers : int
        Bidirectional LSTM layers (0: none).
    rnn_size : int
        Hidden units per direction.
    dropout : float
        Dropout after each LSTM layer.
    rnn_projection : bool
        After each LSTM layer (and its dropout), a square Linear + tanh
        (s3prl's ``proj: True``, used by its Common Voice configs).

    Example
    -------
    >>> head = CTCHead(input_size=8, num_tokens=5, project_dim=4)
    >>> head(torch.randn(3, 7, 8), torch.tensor([7, 5, 1])).exp().sum(-1).allclose(torch.ones(3, 7))
    True
    """

    def __init__(self, input_size, num_tokens, project_dim=1024, rnn_layers=2, rnn_size=1024,
                 dropout=0.2, rnn_projection=False):
        super().__init__()
        self.projection = nn.Linear(input_size, project_dim)
        self.rnns = nn.ModuleList(
            nn.LSTM(project_dim if k == 0 else 2 * rnn_size, rnn_size, batch_first=True,
                    bidirectional=True) for k in range(rnn_layers))
        self.rnn_projections = nn.ModuleList(
            nn.Linear(2 * rnn_size, 2 * rnn_size) for _ in range(rnn_layers if rnn_projection else 0))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * rnn_size if rnn_layers else project_dim, num_tokens)

    def forward(self, features, frame_lengths):
        """``features`` ``[batch, frames, input_size]``, ``frame_lengths``
        ``[batch]`` -> log-probabilities ``[batch, frames, num_tokens]``."""
        x = self.projection(features)
        frames = x.shape[1]
        lengths = frame_lengths.clamp(min=1, max=frames).cpu()
        for k, rnn in enumerate(self.rnns):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                       enforce_sorted=False)
            x, _ = rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=frames)
            x = self.dropout(x)
            if self.rnn_projections:
                x = torch.tanh(self.rnn_projections[k](x))
        return F.log_softmax(self.output(x), dim=-1)


def ctc_loss(log_probs, targets, frame_lengths, target_lengths, blank_index=0):
    """Mean CTC loss over the batch, each utterance's loss divided by its
    target length (PyTorch's ``reduction="mean"``); utterances too short
    for their target contribute 0 (s3prl's ``zero_infinity: True``).

    ``log_probs`` ``[batch, frames, tokens]``, ``targets`` ``[batch, max
    target]`` (padded), lengths ``[batch]`` in frames / tokens.
    """
    return F.ctc_loss(log_probs.transpose(0, 1).float(), targets, frame_lengths, target_lengths,
                      blank=blank_index, reduction="mean", zero_infinity=True)


def error_rate_stats():
    """SpeechBrain's ``ErrorRateStats`` over lists of units (words for WER,
    characters / phonemes / tokens for CER / PER); ``summarize("error_rate")``
    is the percentage of edits over reference units."""
    return ErrorRateStats()


def scoring_units(text, vocab, unit):
    """What an error rate counts: ``"word"`` (blank-separated words, WER)
    or ``"token"`` (the vocabulary's units: characters for CER, phonemes for
    PER; for SF every slot tag counts as one character).

    >>> scoring_units("A BC", CTCVocabulary.letters(), "word")
    ['A', 'BC']
    >>> scoring_units("A BC", CTCVocabulary.letters(), "token")
    ['A', ' ', 'B', 'C']
    """
    if unit == "word":
        return [w for w in _TAG_SPLIT.sub(r" \1 ", text).split()]
    if unit == "token":
        return vocab.units(text)
    raise ValueError(f"error-rate unit must be 'word' or 'token', got {unit!r}")


class CTCDownstreamBrain(DownstreamBrain):
    """Upstream features -> ``CTCHead`` -> CTC loss; greedy decoding and error
    rates on valid / test.

    hparams it reads besides ``DownstreamBrain``'s: ``metric`` (``wer``,
    ``cer`` or ``per``), ``error_unit`` (``word`` or ``token``, see
    :func:`scoring_units`), optional ``slot_metrics`` (SF: also slot-value CER
    and slot-type F1), ``feature_augment`` (modules applied in turn to the
    ``[batch, frames, dim]`` upstream features while training, e.g.
    SpeechBrain's ``Warping`` / ``SpectrogramDrop``) and
    ``source_sample_rate`` (audio is resampled to the upstream's 16 kHz when
    it differs). ``self.vocab`` is the task's
    :class:`CTCVocabulary`.
    """

    def __init__(self, vocab, **kwargs):
        super().__init__(**kwargs)
        self.vocab = vocab

    def upstream_features(self, batch):
        wav, wav_lens = batch.sig
        rate = int(getattr(self.hparams, "source_sample_rate", UPSTREAM_SAMPLE_RATE))
        if rate != UPSTREAM_SAMPLE_RATE:  # e.g. Common Voice's 48 kHz MP3s
            import torchaudio

            wav = torchaudio.functional.resample(wav, rate, UPSTREAM_SAMPLE_RATE)
        return self.modules.upstream(wav, wav_lens, ids=list(batch.id))

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        feats, lens = self.upstream_features(batch)
        frames = torch.round(lens * feats.shape[1]).long().clamp(min=1)
        augment = getattr(self.hparams, "feature_augment", None) or []
        if stage == sb.Stage.TRAIN and augment:
            # SpecAugment on the upstream features (s3prl); SpeechBrain's
            # augmenters work in place, hence the copy
            feats = feats.clone()
            for augmentation in augment:
                feats = augmentation(feats)
        return self.modules.head(feats, frames), frames

    def compute_objectives(self, predictions, batch, stage):
        log_probs, frames = predictions
        tokens, token_lens = batch.tokens
        token_lens = torch.round(token_lens * tokens.shape[1]).long()
        loss = ctc_loss(log_probs, tokens, frames, token_lens, self.vocab.blank_index)
        if stage != sb.Stage.TRAIN:
            paths = greedy_ctc_decode(log_probs.detach(), frames, self.vocab.blank_index)
            hyps = [units_to_text(self.vocab.decode_units(p), self.vocab.kind) for p in paths]
            unit = self.hparams.error_unit
            self.metrics["error"].append(
                batch.id, [scoring_units(h, self.vocab, unit) for h in hyps],
                [scoring_units(r, self.vocab, unit) for r in batch.text])
            if "slots" in self.metrics:
                self.metrics["slots"].append(batch.id, hyps, batch.text)
        return loss

    def make_metrics(self, stage):
        if stage == sb.Stage.TRAIN:
            return {}
        metrics = {"error": error_rate_stats()}
        if getattr(self.hparams, "slot_metrics", False):
            from speechbrain_ext.downstream.slots import SlotStats

            metrics["slots"] = SlotStats()
        return metrics

    def stage_stats(self, stage):
        if stage == sb.Stage.TRAIN:
            return {}
        stats = {self.metric_key: self.metrics["error"].summarize("error_rate")}
        if "slots" in self.metrics:
            stats.update(self.metrics["slots"].summarize())
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        super().on_stage_end(stage, stage_loss, epoch)
        if stage == sb.Stage.TEST:
            for name, value in self.test_stats.items():  # secondary metrics (SF slots)
                if name not in ("loss", self.metric_key):
                    self.write_result(name, value, self.eval_split)
            if if_main_process() and getattr(self.hparams, "wer_file", None):
                with open(self.hparams.wer_file, "w") as f:
                    self.metrics["error"].write_stats(f)


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
