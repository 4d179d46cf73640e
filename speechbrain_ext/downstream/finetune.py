"""Full CTC fine-tuning model (papers 000 and 001): a pre-trained backbone
(wav2vec2, SEW or SEW-D, of the checkpoint's architecture) plus a randomly
initialised linear layer over the 29-symbol letter vocabulary.

What fine-tuning changes compared with the plain backbone (fairseq's
``Wav2VecEncoder`` semantics):

* the CNN feature extractor is frozen for the whole run (its parameters get
  ``requires_grad=False`` and it runs without autograd);
* the transformer (with the feature projection) is frozen for the first
  ``freeze_encoder_updates`` updates (fairseq ``freeze_finetune_updates``):
  it runs without autograd, so only the output layer learns meanwhile;
* in training, time masking with the learned mask embedding regularises like
  SpecAugment: ``mask = (prob, span length, min_masks)`` through the
  backbone's ``time_mask`` (fairseq ``mask_prob`` / ``mask_length``);
* dropout before the output layer (fairseq ``final_dropout``).

The output layer is named ``lm_head`` as in HF's ``Wav2Vec2ForCTC``, whose
logits this model reproduces for the same weights (``tests/test_finetune.py``).

Example
-------
>>> import torch
>>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
>>> model = CTCFineTuneModel(Wav2Vec2Config.micro(), freeze_encoder_updates=10, mask=(0.05, 2, 0))
>>> log_probs, frames = model(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
>>> log_probs.shape, frames.tolist()   # [batch, frames, tokens]
(torch.Size([2, 49, 29]), [49, 24])
>>> model.encoder_frozen, any(p.requires_grad for p in model.backbone.feature_extractor.parameters())
(True, False)
>>> model.set_num_updates(10); model.encoder_frozen
False
>>> scratch = CTCFineTuneModel({"dropout": 0.0}, random_init_architecture={"zoo": "sewd_micro"})
>>> type(scratch.backbone).__name__, scratch.backbone.config.dropout
('SEWDBackbone', 0.0)
"""
from pathlib import Path

import torch
from torch import nn

from speechbrain_ext.downstream.vocabulary import LetterVocabulary, VocabularyError
from speechbrain_ext.interop.loading import apply_backbone_config, init_backbone
from speechbrain_ext.models.registry import backbone_config as make_config
from speechbrain_ext.models.registry import build_backbone


class CTCFineTuneModel(nn.Module):
    """Backbone + dropout + linear -> CTC log-probabilities.

    Arguments
    ---------
    backbone_config : dict or a backbone config, optional
        The training-time settings of the backbone (dropouts, layerdrop,
        ``feature_grad_mult``). With ``pretrained`` the architecture is the
        checkpoint's: an architecture key given here must agree with it
        (``speechbrain_ext.interop.loading.init_backbone``). Without, it is
        ``random_init_architecture``'s (same rule), or, when that is None,
        this config's own (``speechbrain_ext.models.registry.backbone_config``:
        a config object, a ``zoo`` name, keys; default wav2vec2-base).
    pretrained : str or Path, optional
        A checkpoint for ``speechbrain_ext.interop.loading.init_backbone`` (ours, an
        HF folder or a fairseq ``.pt``); None: a random initialisation.
    vocab_size : int
        Output classes (29: blank, A-Z, space, apostrophe).
    final_dropout : float
        Dropout before the output layer.
    freeze_feature_extractor : bool
        Keep the CNN frozen (both papers).
    freeze_encoder_updates : int
        Updates during which the transformer stays frozen.
    mask : (float, int, int), optional
        ``(prob, length, min_masks)`` of the fine-tuning time mask; None or a
        zero probability disables it.
    random_init_architecture : dict, optional
        Without ``pretrained`` only (ignored otherwise): the architecture to
        initialise randomly, as a pre-training YAML's ``backbone_config``
        (``{zoo: w2v2_base}``, a zoo name plus keys, or keys).
    """

    def __init__(self, backbone_config=None, pretrained=None, vocab_size=29, final_dropout=0.0,
                 freeze_feature_extractor=True, freeze_encoder_updates=0, mask=None,
                 random_init_architecture=None):
        super().__init__()
        if pretrained is not None:
            self.backbone = init_backbone(backbone_config, Path(pretrained))
        elif random_init_architecture is not None:
            self.backbone = build_backbone(apply_backbone_config(
                make_config(dict(random_init_architecture)), backbone_config,
                source="random_init_architecture", label="random_init_architecture"))
        else:
            self.backbone = build_backbone(make_config(
                {} if backbone_config is None else backbone_config))
        self.dropout = nn.Dropout(final_dropout)
        self.lm_head = nn.Linear(self.backbone.config.dim, int(vocab_size))
        self.freeze_feature_extractor = bool(freeze_feature_extractor)
        self.freeze_encoder_updates = int(freeze_encoder_updates)
        self.mask = tuple(mask) if mask is not None and float(mask[0]) > 0 else None
        if self.mask is not None and len(self.mask) != 3:
            raise ValueError(f"mask must be (prob, length, min_masks), got {mask!r}")
        if self.freeze_feature_extractor:
            for param in self.backbone.feature_extractor.parameters():
                param.requires_grad_(False)
        self.num_updates = 0

    @property
    def vocab_size(self):
        return self.lm_head.out_features

    @property
    def encoder_frozen(self):
        return self.num_updates < self.freeze_encoder_updates

    def set_num_updates(self, num_updates):
        """Called by the recipe after every optimizer update (and on resume)."""
        self.num_updates = int(num_updates)

    def forward(self, wav, wav_lens=None):
        """``wav`` ``[batch, samples]``, ``wav_lens`` ``[batch]`` relative.
        Returns (log-probabilities ``[batch, frames, tokens]``, valid frames
        ``[batch]``)."""
        # the backbone's own forward (any architecture): the span mask is
        # drawn on each utterance's valid CNN frames; a frozen CNN
        # (requires_grad off) records no graph, a frozen encoder none at all
        span_mask = self.mask if self.training else None
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            out = self.backbone(wav, wav_lens, span_mask=span_mask)
        logits = self.lm_head(self.dropout(out.hidden_states[-1]))
        return logits.float().log_softmax(dim=-1), out.frame_mask.sum(dim=1)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """As ``nn.Module``'s, with a clear error for an output layer of
        another vocabulary size (a model fine-tuned with another vocabulary)."""
        weight = state_dict.get("lm_head.weight")
        if weight is not None and weight.shape[0] != self.vocab_size:
            raise VocabularyError(
                f"the checkpoint's output layer has {weight.shape[0]} classes but this model has "
                f"{self.vocab_size} (blank, A-Z, space, apostrophe); it was fine-tuned with "
                "another vocabulary")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def check_vocabulary(model, vocabulary=None):
    """Raise ``VocabularyError`` unless ``model``'s output fits ``vocabulary``."""
    vocabulary = vocabulary or LetterVocabulary()
    vocabulary.check_output_size(model.vocab_size, where="the fine-tuning model's output layer")
