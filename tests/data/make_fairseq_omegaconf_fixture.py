"""Writes ``fairseq_omegaconf_cfg.pt``: a tiny checkpoint in fairseq's layout
whose ``cfg`` is a real omegaconf 2.3 ``DictConfig``, as fairseq checkpoints
of late 2020 hold it (``torch.save`` of the trainer's config object), and
``fairseq_omegaconf_cfg.json``: what omegaconf itself reads that ``cfg`` as
(``OmegaConf.to_container`` without and with resolving interpolations).

omegaconf is not a dependency of this project; the fixtures were made once
with a throwaway copy and committed (``tests/test_fairseq_safe_load.py``
reads them without omegaconf)::

    pip install --target /tmp/ocpkg omegaconf==2.3.0
    PYTHONPATH=/tmp/ocpkg .venv/bin/python tests/data/make_fairseq_omegaconf_fixture.py \\
        tests/data/fairseq_omegaconf_cfg.pt tests/data/fairseq_omegaconf_cfg.json

fairseq is not needed either: its wav2vec2 config dataclass and the enum
class its ``ChoiceEnum`` builds ("Choices") are imitated by small classes
registered under fairseq's module names, so that the pickle names them as a
real checkpoint would. Everything happens in ``main`` (pytest's doctest
collection imports this file; importing it must not need omegaconf).
"""
import json
import sys
import types


def fake_module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    for cls in attrs.values():
        cls.__module__ = name
    return module


def fairseq_like_classes(II, MISSING):
    from dataclasses import dataclass, field
    from enum import Enum
    from typing import Any, Dict, Optional, Tuple

    # fairseq.dataclass.constants.ChoiceEnum(...) builds an Enum named "Choices"
    Choices = Enum("Choices", {k: k for k in ("default", "layer_norm")}, type=str)
    for name in ("fairseq", "fairseq.dataclass", "fairseq.models", "fairseq.models.wav2vec"):
        fake_module(name)
    fake_module("fairseq.dataclass.constants", Choices=Choices)

    @dataclass
    class Wav2Vec2Config:
        _name: str = "wav2vec2"
        extractor_mode: Choices = Choices.layer_norm  # an omegaconf EnumNode
        encoder_layers: int = 3
        encoder_embed_dim: int = 48
        encoder_ffn_embed_dim: int = 96
        encoder_attention_heads: int = 4
        conv_feature_layers: str = "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] * 2"
        conv_pos: int = 16
        conv_pos_groups: int = 4
        conv_bias: bool = True
        layer_norm_first: bool = True
        dropout: float = 0.0
        dropout_input: float = II("model.dropout")  # kept unresolved in the pickle
        encoder_layerdrop: float = 0.05
        feature_grad_mult: float = 1.0
        latent_temp: Tuple[float, float, float] = (2.0, 0.5, 0.999995)
        mask_channel_before: Optional[int] = None
        w2v_path: str = MISSING
        extra: Dict[str, int] = field(default_factory=lambda: {"a": 1})
        anything: Any = None

    Wav2Vec2Config.__qualname__ = "Wav2Vec2Config"
    fake_module("fairseq.models.wav2vec.wav2vec2", Wav2Vec2Config=Wav2Vec2Config)
    return Wav2Vec2Config


def main(out, expected_out):
    import torch
    from omegaconf import II, MISSING, OmegaConf

    Wav2Vec2Config = fairseq_like_classes(II, MISSING)
    cfg = OmegaConf.create({
        "_name": None,
        "common": {"seed": 1, "tpu": False, "log_format": "json"},
        "task": {"_name": "audio_pretraining", "data": "/data/manifest", "normalize": True,
                 "sample_rate": 16000, "tpu": "${common.tpu}"},
        "model": OmegaConf.structured(Wav2Vec2Config),
        "optimization": {"lr": [0.0005], "update_freq": [2], "max_update": 400000},
    })
    assert type(cfg.model._get_node("extractor_mode")).__name__ == "EnumNode"
    torch.manual_seed(0)
    model = {"mask_emb": torch.randn(48),
             "post_extract_proj.weight": torch.randn(48, 32),
             "post_extract_proj.bias": torch.randn(48)}
    torch.save({"args": None, "cfg": cfg, "model": model, "optimizer_history": [],
                "extra_state": {"epoch": 3}}, out)
    expected = {"unresolved": OmegaConf.to_container(cfg, resolve=False, enum_to_str=True),
                "resolved": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)}
    with open(expected_out, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
