"""CTC fine-tuning model vs HF transformers' ``Wav2Vec2ForCTC``,
``SEWForCTC`` and ``SEWDForCTC``: the same weights give the same logits, in
eval mode without and with padding (HF's ``attention_mask`` against our
relative lengths), and in training mode with the time and channel masks our
model drew handed to HF (its ``mask_time_indices``, and its channel-mask
draw replaced by ours)."""
import numpy as np
import pytest
import torch

from speechbrain_ext.downstream.finetune import CTCFineTuneModel
from speechbrain_ext.interop.hf import ours_to_hf_config, ours_to_hf_sew_config
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.sew import SEWBackbone, SEWConfig, SEWDBackbone, SEWDConfig
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config

transformers = pytest.importorskip("transformers")

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0,
                  layerdrop=0.0)
SAMPLES = 16000
LENGTHS = torch.tensor([16000, 11000, 6100])  # a padded batch
ATOL = 1e-5

# architecture -> (our backbone, its config, HF CTC class, HF config class, HF base-model attribute)
ARCHITECTURES = {
    "w2v2-group": (Wav2Vec2Backbone, lambda: Wav2Vec2Config.micro(**NO_DROPOUT),
                   "Wav2Vec2ForCTC", "Wav2Vec2Config", "wav2vec2"),
    "w2v2-layer": (Wav2Vec2Backbone, lambda: Wav2Vec2Config.micro(
        extractor_mode="layer_norm", conv_bias=True, layer_norm_first=True, **NO_DROPOUT),
                   "Wav2Vec2ForCTC", "Wav2Vec2Config", "wav2vec2"),
    "sew": (SEWBackbone, lambda: SEWConfig.micro(**NO_DROPOUT), "SEWForCTC", "SEWConfig", "sew"),
    "sew-d": (SEWDBackbone, lambda: SEWDConfig.micro(**NO_DROPOUT), "SEWDForCTC", "SEWDConfig", "sew_d"),
}
HF_MODULES = {"wav2vec2": transformers.models.wav2vec2.modeling_wav2vec2,
              "sew": transformers.models.sew.modeling_sew,
              "sew_d": transformers.models.sew_d.modeling_sew_d}


def randomise(module):
    """Move norms, biases and gains off their initial values, so that a
    mis-mapped or ignored parameter shows in the logits."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or "original0" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))


def build_pair(kind, tmp_path, **hf_extra):
    """Our ``CTCFineTuneModel`` (from a saved backbone) and the HF
    ``...ForCTC`` holding the same weights."""
    backbone_cls, make_config, ctc_name, config_name, prefix = ARCHITECTURES[kind]
    torch.manual_seed(0)
    config = make_config()
    backbone = backbone_cls(config)
    randomise(backbone)
    ours = CTCFineTuneModel(NO_DROPOUT, pretrained=save_backbone(backbone, tmp_path / f"{kind}.ckpt"),
                            final_dropout=0.0)
    randomise(ours.lm_head)
    values = ours_to_hf_config(config) if isinstance(config, Wav2Vec2Config) else ours_to_hf_sew_config(config)
    values = {**values, "vocab_size": 29, "final_dropout": 0.0, "architectures": None, **hf_extra}
    hf = getattr(transformers, ctc_name)(getattr(transformers, config_name)(**values))
    # the transfer: our backbone's names are HF's base model's, the head is lm_head in both
    state = {**{f"{prefix}.{k}": v for k, v in ours.backbone.state_dict().items()},
             **{f"lm_head.{k}": v for k, v in ours.lm_head.state_dict().items()}}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert not missing, missing
    return ours, hf, prefix


def padded_batch(seed=1):
    torch.manual_seed(seed)
    wav = torch.randn(len(LENGTHS), SAMPLES)
    for i, n in enumerate(LENGTHS):
        wav[i, n:] = 0.0
    attention_mask = (torch.arange(SAMPLES)[None] < LENGTHS[:, None]).long()
    return wav, attention_mask


def assert_close_on(ours, theirs, valid):
    assert ours.shape == theirs.shape
    err = (ours - theirs)[valid].abs().max().item()
    assert err < ATOL, f"max abs difference {err}"


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
def test_logits_match_hf_for_ctc_in_eval(kind, tmp_path):
    ours, hf, _ = build_pair(kind, tmp_path)
    ours.eval(), hf.eval()
    wav, attention_mask = padded_batch()
    with torch.no_grad():
        # no padding: the whole batch at full length, no mask on either side
        logits, frames = ours.logits(wav[:1])
        reference = hf(wav[:1]).logits
        assert_close_on(logits, reference, torch.ones(logits.shape[:2], dtype=torch.bool))
        log_probs, _ = ours(wav[:1])
        torch.testing.assert_close(log_probs, reference.log_softmax(-1), atol=ATOL, rtol=1e-5)
        # padding: our relative lengths vs HF's attention mask, on the real frames
        logits, frames = ours.logits(wav, LENGTHS.float() / SAMPLES)
        reference = hf(wav, attention_mask=attention_mask).logits
    valid = torch.arange(logits.shape[1])[None] < frames[:, None]
    hf_frames = hf._get_feat_extract_output_lengths(attention_mask.sum(-1))
    assert frames.tolist() == hf_frames.tolist()
    assert_close_on(logits, reference, valid)
    assert logits.shape[-1] == 29


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
def test_training_masks_match_hf(kind, tmp_path, monkeypatch):
    """In training mode (dropouts 0) the model draws a time and a channel
    mask; given the same masks, HF's ``_mask_hidden_states`` (time mask with
    ``masked_spec_embed``, masked channels set to 0) gives the same logits:
    channel masking acts where HF's ``mask_feature_prob`` does, with its
    value."""
    ours, hf, prefix = build_pair(kind, tmp_path, mask_time_prob=0.0, mask_feature_prob=0.3,
                                  mask_feature_length=8, mask_feature_min_masks=0)
    ours.mask, ours.mask_channel = (0.3, 4, 1), (0.3, 8, 1)
    ours.train(), hf.train()
    drawn = []
    hook = ours.backbone.register_forward_hook(lambda module, args, out: drawn.append(out))
    wav, attention_mask = padded_batch(seed=2)
    with torch.no_grad():
        logits, frames = ours.logits(wav, LENGTHS.float() / SAMPLES)
    hook.remove()
    out = drawn[0]
    time_mask, channel_mask = out.time_mask, out.extra["channel_mask"]
    assert time_mask.any() and channel_mask.any() and not channel_mask.all()
    assert channel_mask.shape == (len(LENGTHS), ours.backbone.config.dim)
    assert not (time_mask & ~out.frame_mask).any()  # padding is never time-masked

    def our_channel_mask(shape, mask_prob, mask_length, attention_mask=None, min_masks=0):
        assert tuple(shape) == tuple(channel_mask.shape)  # HF draws only the channel mask here
        return channel_mask.numpy().astype(np.bool_)

    monkeypatch.setattr(HF_MODULES[prefix], "_compute_mask_indices", our_channel_mask)
    with torch.no_grad():
        hidden = getattr(hf, prefix)(wav, attention_mask=attention_mask,
                                     mask_time_indices=time_mask).last_hidden_state
        reference = hf.lm_head(hf.dropout(hidden))
    valid = torch.arange(logits.shape[1])[None] < frames[:, None]
    assert_close_on(logits, reference, valid)
    # and the masks matter: without them the logits differ
    ours.eval()
    with torch.no_grad():
        plain, _ = ours.logits(wav, LENGTHS.float() / SAMPLES)
    assert (plain - logits)[valid].abs().max() > 1e-3
