"""HuBERT checkpoints as our wav2vec2 backbone.

HuBERT's network is wav2vec2's (the conv feature extractor, the feature
LayerNorm and ``post_extract_proj``, the transformer with a convolutional
positional embedding, post-LN for BASE, pre-LN for LARGE / X-LARGE); it has
no quantizer, and its pre-training heads (``final_proj``, the label
embeddings ``label_embs_concat``) are not part of the backbone: they are
dropped on import. So a HuBERT checkpoint loads into ``Wav2Vec2Backbone``
(architecture ``wav2vec2``) with the same names as a wav2vec2 one:

* an HF ``HubertModel`` folder (``config.json`` ``model_type: hubert``; the
  ``hubert.`` prefix of ``HubertForCTC`` / ``...ForSequenceClassification``
  is stripped): ``hf.load_hf_folder``;
* a fairseq HuBERT ``.pt`` (``cfg.model._name: hubert``; a CTC fine-tuned
  ``hubert_ctc`` one nests it as ``w2v_args``): ``fairseq.load_fairseq_checkpoint``.

What our backbone does not implement (HF ``feat_proj_layer_norm: false``,
``conv_pos_batch_norm``, fairseq ``layer_type: conformer``, another
activation) is a ``CheckpointError``; so is a state whose keys are not
exactly the backbone's (``check_backbone_keys``), naming the file and the
keys.

Example
-------
>>> check_hf_hubert_config({"model_type": "hubert", "hidden_size": 64})  # wav2vec2's network: fine
>>> check_hf_hubert_config({"model_type": "hubert", "conv_pos_batch_norm": True})
Traceback (most recent call last):
...
speechbrain_ext.io.checkpoints.CheckpointError: config.json: conv_pos_batch_norm=True is not supported (expected False): our wav2vec2 backbone cannot hold this HuBERT
"""
import torch

from speechbrain_ext.io.checkpoints import CheckpointError

HF_MODEL_TYPE = "hubert"
# fairseq's registered model names: pre-training, CTC fine-tuning
FAIRSEQ_NAME = "hubert"
FAIRSEQ_CTC_NAME = "hubert_ctc"
# fairseq HuBERT's pre-training heads (HubertModel.final_proj, label_embs_concat):
# the targets' projection and embeddings, not the backbone
FAIRSEQ_HEADS = ("final_proj.", "label_embs_concat")

# HF HubertConfig options that change the network away from wav2vec2's: the value ours has
_HF_REQUIRED = {"feat_proj_layer_norm": True, "conv_pos_batch_norm": False}
# fairseq HubertConfig options likewise (absent = fairseq's default, which is ours)
_FAIRSEQ_REQUIRED = {"activation_fn": "gelu", "layer_type": "transformer", "pos_conv_depth": 1}


def check_hf_hubert_config(hf, config_file="config.json"):
    """A ``CheckpointError`` naming ``config_file`` if the HF
    ``HubertConfig`` dict ``hf`` asks for a network our wav2vec2 backbone
    lacks; its other fields read as a ``Wav2Vec2Config``'s
    (``hf.hf_hubert_config_to_ours``)."""
    for key, value in _HF_REQUIRED.items():
        if hf.get(key, value) != value:
            raise CheckpointError(f"{config_file}: {key}={hf[key]!r} is not supported (expected {value!r}): "
                                  "our wav2vec2 backbone cannot hold this HuBERT")


def check_fairseq_hubert_config(model_cfg, where):
    """A ``CheckpointError`` naming ``where`` if fairseq's HuBERT
    ``cfg.model`` asks for a network our wav2vec2 backbone lacks.

    >>> check_fairseq_hubert_config({"_name": "hubert", "layer_type": "transformer"}, "h.pt")
    >>> check_fairseq_hubert_config({"_name": "hubert", "layer_type": "conformer"}, "h.pt")
    Traceback (most recent call last):
    ...
    speechbrain_ext.io.checkpoints.CheckpointError: h.pt: fairseq HuBERT layer_type='conformer' is not supported (expected 'transformer'): our wav2vec2 backbone cannot hold it
    """
    for key, value in _FAIRSEQ_REQUIRED.items():
        if model_cfg.get(key) is not None and model_cfg[key] != value:
            raise CheckpointError(f"{where}: fairseq HuBERT {key}={model_cfg[key]!r} is not supported "
                                  f"(expected {value!r}): our wav2vec2 backbone cannot hold it")


def drop_fairseq_heads(state):
    """fairseq HuBERT's state without its pre-training heads (a new dict).

    >>> sorted(drop_fairseq_heads({"mask_emb": 0, "final_proj.weight": 1, "label_embs_concat": 2}))
    ['mask_emb']
    """
    return {k: v for k, v in state.items() if not k.startswith(FAIRSEQ_HEADS)}


def check_backbone_keys(config, state, source):
    """A ``CheckpointError`` naming ``source`` (the file) and the keys if
    ``state`` (our names) is not exactly the backbone of ``config``'s: keys
    it lacks, keys the backbone has not, tensors of another shape.
    ``masked_spec_embed`` may be absent (HF leaves it out when masking is
    off). Checked on the meta device: nothing is allocated.

    >>> from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
    >>> state = Wav2Vec2Backbone(Wav2Vec2Config.micro()).state_dict()
    >>> check_backbone_keys(Wav2Vec2Config.micro(), state, "h.pt")  # exactly the backbone's: fine
    >>> state["final_proj.weight"] = state.pop("encoder.layer_norm.bias")
    >>> check_backbone_keys(Wav2Vec2Config.micro(), state, "h.pt")
    Traceback (most recent call last):
    ...
    speechbrain_ext.io.checkpoints.CheckpointError: h.pt: its HuBERT weights do not match the architecture of its config (keys by our names, HF's)
      missing: encoder.layer_norm.bias
      unknown: final_proj.weight
    """
    from speechbrain_ext.models.registry import build_backbone, state_mismatch

    with torch.device("meta"):
        own = build_backbone(config).state_dict()
    shapes, missing, unexpected = state_mismatch(own, state)
    wrong = [f"{k}: checkpoint {theirs} vs backbone {ours}" for k, theirs, ours in sorted(shapes)]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source}: its HuBERT weights do not match the architecture of its config "
            "(keys by our names, HF's)"
            + (f"\n  missing: {', '.join(missing)}" if missing else "")
            + (f"\n  unknown: {', '.join(unexpected)}" if unexpected else "")
            + "".join(f"\n  shape {w}" for w in wrong))
