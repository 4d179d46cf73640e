"""``CTCDownstreamBrain``: the ``DownstreamBrain`` of the sequence (CTC)
tasks (ASR, PR, SF, ASR-zh; ``downstream.ctc`` runs them).

Upstream features -> ``CTCHead`` -> CTC loss while training; on valid / test
also greedy decoding and the task's error rate (SpeechBrain's
``ErrorRateStats`` over :func:`~speechbrain_ext.downstream.metrics.scoring_units`),
plus SF's slot scores.
"""
import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.metric_stats import ErrorRateStats

from speechbrain_ext.downstream.brain import DownstreamBrain
from speechbrain_ext.downstream.ctc_head import ctc_loss
from speechbrain_ext.downstream.decoding.greedy import greedy_ctc_texts
from speechbrain_ext.downstream.metrics import scoring_units
from speechbrain_ext.downstream.slots import SlotStats

UPSTREAM_SAMPLE_RATE = 16000


class CTCDownstreamBrain(DownstreamBrain):
    """Upstream features -> ``CTCHead`` -> CTC loss; greedy decoding and error
    rates on valid / test.

    hparams it reads besides ``DownstreamBrain``'s: ``metric`` (``wer``,
    ``cer`` or ``per``), ``error_unit`` (``word`` or ``token``, see
    ``metrics.scoring_units``), optional ``slot_metrics`` (SF: also
    slot-value CER and slot-type F1), ``feature_augment`` (modules applied in
    turn to the ``[batch, frames, dim]`` upstream features while training,
    e.g. SpeechBrain's ``Warping`` / ``SpectrogramDrop``), ``wer_file``
    (where the test utterances' errors are written) and
    ``source_sample_rate`` (audio is resampled to the upstream's 16 kHz when
    it differs). ``self.vocab`` is the task's ``CTCVocabulary``.
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
        """-> (log-probabilities ``[batch, frames, tokens]``, valid frames ``[batch]``)."""
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
            hyps = greedy_ctc_texts(log_probs.detach(), frames, self.vocab)
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
        metrics = {"error": ErrorRateStats()}
        if getattr(self.hparams, "slot_metrics", False):
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
