"""wav2vec2 contrastive pre-training as fairseq runs it.

Per batch: CNN features -> span mask (p=0.65, L=10, min 2 spans, on each
utterance's unpadded length) -> the transformer sees mask embeddings at the
masked frames -> ``final_proj`` of the context vectors at the masked frames
is compared (cosine / 0.1) with the quantized, ``project_q``-ed unmasked CNN
features of the same frames (positive) and of 100 other masked frames of the
same utterance (negatives). The quantizer and the negatives are computed for
masked frames only, as fairseq does (HF computes them for every frame).

Head names follow HF ``Wav2Vec2ForPreTraining`` (``quantizer``,
``project_q``, ``project_hid``). Any registered backbone works (wav2vec2,
SEW, SEW-D: ``backbone_config`` with an ``architecture`` or ``zoo`` key); SEW
and SEW-D use MLP predictor heads with BatchNorm (``mlp_hidden_dim=4096``,
paper 002) instead of linear ``project_q`` / ``project_hid``.

Example
-------
>>> import torch
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
>>> model = Wav2Vec2ContrastiveModel(Wav2Vec2Config.micro(), num_negatives=5,
...                                  codevector_dim=32, final_dim=16, num_vars=8)
>>> out = model(torch.randn(2, 16000))
>>> sorted(k for k in out if k in ("loss", "accuracy", "prob_perplexity"))
['accuracy', 'loss', 'prob_perplexity']
>>> out["loss"].backward()
"""
import torch
from torch import nn

from speechbrain_ext.models.masking import compute_span_mask
from speechbrain_ext.models.registry import build_backbone
from speechbrain_ext.pretraining.contrastive import Wav2Vec2Loss, contrastive_logits, sample_negatives
from speechbrain_ext.pretraining.heads import projection_head
from speechbrain_ext.pretraining.quantizer import GumbelVectorQuantizer


class Wav2Vec2ContrastiveModel(nn.Module):
    """Backbone + quantizer + projections + fairseq's loss.

    Arguments
    ---------
    backbone_config : a backbone config, or a dict (``architecture`` / ``zoo``
        keys choose the backbone, see ``speechbrain_ext.models.registry.backbone_config``)
    mask_prob, mask_length, min_masks : span masking (0.65, 10, 2)
    num_negatives : distractors per masked frame (100)
    codevector_dim, num_groups, num_vars : quantizer (256, 2, 320)
    final_dim : dimension of the compared vectors (256)
    logit_temperature : cosine-similarity temperature (0.1)
    dropout_features : dropout on the quantizer input (0.1)
    quantizer_temperature : (max, min, decay) per update (2, 0.5, 0.999995)
    diversity_weight, feature_penalty_weight : loss weights (0.1, 10)
    backbone : optional existing backbone (e.g. loaded from a checkpoint)
    mlp_hidden_dim : None for linear heads (wav2vec2), else the hidden size of
        the MLP predictor heads with BatchNorm (SEW / SEW-D: 4096)
    loss_reduction : ``mean`` (``loss`` per masked frame: fairseq's gradient
        after its trainer divides by the sample size) or ``sum`` (``loss``
        times the GPU batch's masked frames, the sum-reduced loss of paper
        001, Sections 3.1 and 5: its scale grows with the GPU batch)
    compile_backbone : ``torch.compile`` the backbone's context network
        (transformer; ``nn.Module.compile``, so state-dict names are kept).
        Off by default: compiling costs tens of seconds to minutes at the
        first batch of every new shape and pays off on a GPU only.
    """

    def __init__(self, backbone_config=None, mask_prob=0.65, mask_length=10, min_masks=2,
                 num_negatives=100, codevector_dim=256, num_groups=2, num_vars=320,
                 final_dim=256, logit_temperature=0.1, dropout_features=0.1,
                 quantizer_temperature=(2.0, 0.5, 0.999995), diversity_weight=0.1,
                 feature_penalty_weight=10.0, backbone=None, mlp_hidden_dim=None,
                 loss_reduction="mean", compile_backbone=False):
        super().__init__()
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        self.loss_reduction = loss_reduction
        self.wav2vec2 = backbone if backbone is not None else build_backbone(backbone_config or {})
        cnn_dim = self.wav2vec2.feature_extractor.output_dim
        dim = self.wav2vec2.config.dim
        max_temp, min_temp, decay = quantizer_temperature
        self.quantizer = GumbelVectorQuantizer(cnn_dim, num_groups, num_vars, codevector_dim,
                                               max_temp, min_temp, decay)
        self.project_q = projection_head(codevector_dim, final_dim, mlp_hidden_dim)
        self.project_hid = projection_head(dim, final_dim, mlp_hidden_dim)
        self.dropout_features = nn.Dropout(dropout_features)
        self.loss_fn = Wav2Vec2Loss(diversity_weight, feature_penalty_weight)
        self.mask_prob, self.mask_length, self.min_masks = mask_prob, mask_length, min_masks
        self.num_negatives = num_negatives
        self.logit_temperature = logit_temperature
        if compile_backbone:
            # the transformer has static shapes per batch; the CNN and the
            # masking (data-dependent shapes) stay eager
            getattr(self.wav2vec2, "encoder", self.wav2vec2).compile()

    monitor_key = "loss"  # the output that compares validation runs

    @property
    def backbone(self):
        return self.wav2vec2

    def min_frames(self):
        """Shortest utterance (in frames) this objective accepts."""
        return self.mask_length + 1

    def set_num_updates(self, num_updates):
        """Gumbel temperature for update ``num_updates`` (also on resume)."""
        self.quantizer.set_num_updates(num_updates)

    def after_optimizer_step(self, num_updates):
        """Called once after every optimizer update."""
        self.set_num_updates(num_updates)

    def draw_masks(self, num_samples, generator=None):
        """Span mask and negatives drawn ahead of the step (e.g. in a data
        loader worker, from the batch's sample counts alone), for
        ``forward(..., time_mask=, negative_index=)``.

        Arguments
        ---------
        num_samples : torch.LongTensor
            ``[B]`` unpadded samples per utterance (the padded length is
            their maximum).
        generator : torch.Generator, optional

        Returns
        -------
        time_mask : torch.BoolTensor
            ``[B, T]``, ``T`` the CNN frames of the longest utterance.
        negative_index : torch.LongTensor
            ``[total_masked, num_negatives]``, see ``sample_negatives``.
        """
        num_samples = torch.as_tensor(num_samples).long()
        lengths = self.wav2vec2.frame_lengths(num_samples)
        frames = int(self.wav2vec2.frame_lengths(int(num_samples.max())))
        time_mask = compute_span_mask(lengths, frames, self.mask_prob, self.mask_length,
                                      self.min_masks, generator)
        negative_index = sample_negatives(time_mask.sum(dim=1), self.num_negatives, generator)
        return time_mask, negative_index

    def forward(self, wav, wav_lens=None, time_mask=None, negative_index=None):
        """``wav`` ``[B, samples]`` -> dict with ``loss`` (per masked frame,
        or summed over them: ``loss_reduction``) and logging statistics.
        ``time_mask`` ``[B, T]`` and ``negative_index`` ``[total_masked, K]``
        (both or neither; see ``draw_masks``) replace the draws in the step."""
        if (time_mask is None) != (negative_index is None):
            raise ValueError("give both time_mask and negative_index, or neither")
        span_mask = None if time_mask is not None else (self.mask_prob, self.mask_length,
                                                         self.min_masks)
        out = self.wav2vec2(wav, wav_lens, time_mask=time_mask, span_mask=span_mask)
        time_mask = out.time_mask
        # Masked frames in row-major order (utterance b's frames contiguous):
        # one nonzero (one host synchronisation) serves both gathers, where
        # two boolean-mask indexings would synchronise twice.
        masked = time_mask.reshape(-1).nonzero().squeeze(1)  # [total_masked]
        hidden = out.last_hidden_state
        context = self.project_hid(hidden.reshape(-1, hidden.shape[-1]).index_select(0, masked))
        features = self.dropout_features(out.features)
        codes, qstats = self.quantizer(
            features.reshape(-1, features.shape[-1]).index_select(0, masked))
        targets = self.project_q(codes)
        if negative_index is None:
            negative_index = sample_negatives(time_mask.sum(dim=1), self.num_negatives,
                                              total=masked.numel())
        elif negative_index.shape != (masked.numel(), self.num_negatives):
            raise ValueError(f"negative_index {tuple(negative_index.shape)} does not fit "
                             f"{masked.numel()} masked frames x {self.num_negatives} negatives")
        logits = contrastive_logits(context, targets, negative_index.to(context.device),
                                    self.logit_temperature)
        loss = self.loss_fn(logits, qstats["prob_perplexity"], self.quantizer.num_codevectors,
                            out.feature_penalty)
        loss["loss"] = loss.pop("total")
        if self.loss_reduction == "sum":  # the terms stay per frame, for the logs
            loss["loss"] = loss["loss"] * loss["num_masked"]
        loss.update(prob_perplexity=qstats["prob_perplexity"].detach(),
                    code_perplexity=qstats["code_perplexity"],
                    temperature=qstats["temperature"],
                    mask_rate=(time_mask.sum() / out.frame_mask.sum()).detach(),
                    time_mask=time_mask)  # [B, frames]: the recipe compares processes' masks
        return loss
