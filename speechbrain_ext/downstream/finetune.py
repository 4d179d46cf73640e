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
* in training, channel masking (``mask_channel = (prob, span length[,
  min_masks])``, fairseq ``mask_channel_prob`` / ``mask_channel_length``,
  HF ``mask_feature_prob``): spans of the projected CNN features' channels
  set to zero at every frame, after the time mask; both masks are drawn
  from torch's global generator (of the input's device);
* dropout before the output layer (fairseq ``final_dropout``).

The output layer is named ``lm_head`` as in HF's ``Wav2Vec2ForCTC`` /
``SEWForCTC`` / ``SEWDForCTC``, whose logits this model reproduces for the
same weights (``tests/test_finetune_parity.py``).

``pretrained`` may also be a fairseq CTC fine-tuned checkpoint
(``w2v_encoder.*``, e.g. the released wav2vec2-base 100 h model, paper
002 Table 4's baselines): its encoder becomes the backbone and its output
layer (``w2v_encoder.proj``) this model's ``lm_head``, rows mapped by
symbol from fairseq's dictionary (``dict.ltr.txt`` beside the checkpoint,
or ``fairseq_dictionary``; ``|`` is our space, fairseq's ``<s>`` our
blank; the rows of ``<pad>``, ``</s>`` and ``<unk>``, never CTC targets,
are left out). A dictionary with other symbols than the letter
vocabulary's is a ``VocabularyError`` naming them, raised when the model is
built, before any training.

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
import logging
from pathlib import Path

import torch
from torch import nn

from speechbrain_ext.downstream.vocabulary import (BLANK, FAIRSEQ_WORD_SEPARATOR, WORD_SEPARATOR,
                                                   LetterVocabulary, VocabularyError)
from speechbrain_ext.interop.fairseq import (FAIRSEQ_CTC_BLANK, FAIRSEQ_SPECIAL_SYMBOLS,
                                             load_fairseq_finetuned)
from speechbrain_ext.interop.loading import apply_backbone_config, init_backbone
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import backbone_config as make_config
from speechbrain_ext.models.registry import backbone_from_state, build_backbone

logger = logging.getLogger(__name__)


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
    mask_channel : (float, int) or (float, int, int), optional
        ``(prob, length[, min_masks])`` of the fine-tuning channel mask
        (``min_masks`` 0 by default, fairseq's); None or a zero probability
        disables it.
    vocabulary : LetterVocabulary, optional
        The output's vocabulary (default: the 29 letters), against which a
        fairseq fine-tuned checkpoint's output layer is mapped.
    fairseq_dictionary : str or Path, optional
        fairseq's ``dict.ltr.txt`` of a fine-tuned ``pretrained`` checkpoint
        (default: the one beside it).
    load_head : bool
        Whether the output layer of a fine-tuned ``pretrained`` checkpoint is
        imported (True) or this model's stays randomly initialised.
    """

    def __init__(self, backbone_config=None, pretrained=None, vocab_size=29, final_dropout=0.0,
                 freeze_feature_extractor=True, freeze_encoder_updates=0, mask=None,
                 random_init_architecture=None, mask_channel=None, vocabulary=None,
                 fairseq_dictionary=None, load_head=True):
        super().__init__()
        head = None
        if pretrained is not None and _is_fairseq_file(Path(pretrained)):
            # one read gives the backbone and (fine-tuned checkpoints) the head
            path = Path(pretrained)
            loaded = load_fairseq_finetuned(path, fairseq_dictionary)
            merged = apply_backbone_config(loaded.config, backbone_config, source=str(path))
            self.backbone = backbone_from_state(merged, loaded.state)
            head = loaded.head if load_head else None
        elif pretrained is not None:
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
        self.mask_channel = _channel_mask_spec(mask_channel, self.backbone.config.dim)
        if self.freeze_feature_extractor:
            for param in self.backbone.feature_extractor.parameters():
                param.requires_grad_(False)
        self.num_updates = 0
        if head is not None:
            self._import_fairseq_head(head, vocabulary or LetterVocabulary(), pretrained)

    def _import_fairseq_head(self, head, vocabulary, path):
        """``lm_head`` <- a fairseq fine-tuned output layer, rows by symbol."""
        if head.symbols is None:
            raise CheckpointError(
                f"{path} holds a fine-tuned CTC output layer of {head.num_classes} classes; mapping it "
                f"to the letter vocabulary needs fairseq's dictionary, not found at {head.dictionary}: "
                "put the dict.ltr.txt it was fine-tuned with there, or pass fairseq_dictionary "
                "(load_head=False: a new output layer)")
        if len(vocabulary) != self.vocab_size:
            vocabulary.check_output_size(self.vocab_size, where="the fine-tuning model's output layer")
        rows = fairseq_head_rows(head.symbols, vocabulary, where=f"{path} ({head.dictionary})")
        if head.weight.shape[1] != self.lm_head.in_features:
            raise CheckpointError(f"{path}: the CTC output layer takes {head.weight.shape[1]} features, "
                                  f"the encoder gives {self.lm_head.in_features}")
        with torch.no_grad():
            self.lm_head.weight.copy_(head.weight[rows])
            self.lm_head.bias.copy_(head.bias[rows])
        logger.info(f"{path}: CTC output layer imported ({len(rows)} of its {head.num_classes} rows, "
                    f"by the symbols of {head.dictionary})")

    @property
    def vocab_size(self):
        return self.lm_head.out_features

    @property
    def encoder_frozen(self):
        return self.num_updates < self.freeze_encoder_updates

    def set_num_updates(self, num_updates):
        """Called by the recipe after every optimizer update (and on resume)."""
        self.num_updates = int(num_updates)

    def logits(self, wav, wav_lens=None):
        """``wav`` ``[batch, samples]``, ``wav_lens`` ``[batch]`` relative.
        Returns (logits ``[batch, frames, tokens]``: HF's ``...ForCTC``
        ``logits``, valid frames ``[batch]``)."""
        # the backbone's own forward (any architecture): the span mask is
        # drawn on each utterance's valid CNN frames; a frozen CNN
        # (requires_grad off) records no graph, a frozen encoder none at all
        masks = {}
        if self.training:
            masks["span_mask"] = self.mask
            if self.mask_channel is not None:
                masks["channel_span_mask"] = self.mask_channel
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            out = self.backbone(wav, wav_lens, **masks)
        return self.lm_head(self.dropout(out.hidden_states[-1])), out.frame_mask.sum(dim=1)

    def forward(self, wav, wav_lens=None):
        """``wav`` ``[batch, samples]``, ``wav_lens`` ``[batch]`` relative.
        Returns (log-probabilities ``[batch, frames, tokens]``, valid frames
        ``[batch]``)."""
        logits, frames = self.logits(wav, wav_lens)
        return logits.float().log_softmax(dim=-1), frames

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


def _is_fairseq_file(path):
    # as speechbrain_ext.interop.loading: a .pt file is a fairseq checkpoint
    return path.suffix == ".pt" and path.is_file()


def _channel_mask_spec(mask_channel, dim):
    """``(prob, length, min_masks)`` of a YAML's ``mask_channel`` (None when
    off); a span longer than the model width is an error naming both."""
    if mask_channel is None or float(mask_channel[0]) <= 0:
        return None
    spec = tuple(mask_channel)
    if len(spec) not in (2, 3):
        raise ValueError(f"mask_channel must be (prob, length) or (prob, length, min_masks), "
                         f"got {mask_channel!r}")
    prob, length, min_masks = float(spec[0]), int(spec[1]), int(spec[2]) if len(spec) == 3 else 0
    if not 0 < prob <= 1 or length < 1:
        raise ValueError(f"mask_channel {mask_channel!r}: prob must be in (0, 1], length >= 1")
    if length > dim:
        raise ValueError(f"mask_channel {mask_channel!r}: spans of {length} channels, but the "
                         f"backbone is {dim} wide")
    return prob, length, min_masks


def fairseq_head_rows(symbols, vocabulary, where="the fairseq checkpoint"):
    """For each symbol of ``vocabulary`` (blank first), the row of a fairseq
    CTC output layer whose rows are ``symbols`` (fairseq's ``Dictionary``:
    its four specials, then ``dict.ltr.txt``'s symbols): blank <- ``<s>``
    (``<ctc_blank>`` when the dictionary has one), space <- ``|``, any
    other symbol <- itself. A dictionary whose symbols (specials aside)
    are not exactly the vocabulary's is a ``VocabularyError`` naming the
    symbols it lacks and those it has in excess.

    >>> fairseq = ["<s>", "<pad>", "</s>", "<unk>", "|", "E", "T", "A"]
    >>> fairseq_head_rows(fairseq, LetterVocabulary(["A", "E", "T", " "]))
    [0, 7, 5, 6, 4]
    """
    blank = FAIRSEQ_CTC_BLANK if FAIRSEQ_CTC_BLANK in symbols else FAIRSEQ_SPECIAL_SYMBOLS[0]
    names = {BLANK: blank, WORD_SEPARATOR: FAIRSEQ_WORD_SEPARATOR}
    wanted = [names.get(s, s) for s in vocabulary.symbols]
    ignored = set(FAIRSEQ_SPECIAL_SYMBOLS) | {FAIRSEQ_CTC_BLANK}
    missing = [s for s in wanted if s not in symbols]
    extra = [s for s in symbols if s not in ignored and s not in wanted]
    if missing or extra:
        shown = lambda items: ", ".join(repr(s) + (" (space)" if s == FAIRSEQ_WORD_SEPARATOR else "")
                                        for s in items)
        raise VocabularyError(
            f"{where}: the fine-tuned output layer's vocabulary differs from the "
            f"{len(vocabulary)}-symbol letter vocabulary (blank, A-Z, space, apostrophe):"
            + (f" it has {shown(extra)}, which the letter vocabulary lacks;" if extra else "")
            + (f" it lacks {shown(missing)};" if missing else "")
            + " its rows cannot be mapped (load_head=False starts a new output layer)")
    return [symbols.index(s) for s in wanted]


def check_vocabulary(model, vocabulary=None):
    """Raise ``VocabularyError`` unless ``model``'s output fits ``vocabulary``."""
    vocabulary = vocabulary or LetterVocabulary()
    vocabulary.check_output_size(model.vocab_size, where="the fine-tuning model's output layer")
