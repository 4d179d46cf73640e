"""The model zoo: named backbone configurations of paper 002 (Tables 1, 2
and 6) and micro sizes for CPU tests.

Any pre-training YAML selects one with ``backbone_config: {zoo: NAME}``
(other keys override it, e.g. ``layerdrop``). ``python -m
speechbrain_ext.models`` prints one line per model: its name and its parameter count
in millions, counted as paper 002 counts them
(``speechbrain_ext.models.registry.count_parameters``).

Sizes (paper 002 Table 2 / reference notes section 3): W2V2 WFE-O with c
channels and a width-E, L-layer transformer; SEW / SEW-D WFE-C-c64-11 (c96
for SEW-D-base+), positional conv k31 with squeeze factor 2. Heads = E / 64,
FFN = 4E everywhere. SEW-tiny is Table 6's row 7 (E512 L12); SEW-small (E768
L12) and SEW-mid (E768 L24) are not in paper 002 (asappresearch/sew's
released sizes). Dropouts are fairseq's wav2vec2-base pre-training values
(paper 002 uses that config); layerdrop as the authors' scripts: 0.05 for the
tiny and small models, 0.2 for mid and larger SEW / SEW-D.

Example
-------
>>> cfg = zoo_config("sewd_tiny")
>>> type(cfg).__name__, cfg.dim, cfg.num_layers, cfg.num_heads
('SEWDConfig', 384, 12, 6)
>>> from speechbrain_ext.models.registry import count_parameters
>>> round(count_parameters(zoo_config("w2v2_tiny")) / 1e6, 1)  # paper 002 Table 1: 11.1
11.1
"""
from speechbrain_ext.models.feature_extractor import WAV2VEC2_CONV_LAYERS
from speechbrain_ext.models.sew import SEWConfig, SEWDConfig, wfe_c_layers
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config


def _wfe_o(channels):
    return [(channels, k, s) for _, k, s in WAV2VEC2_CONV_LAYERS]


def _w2v2(channels, dim, layers):
    return Wav2Vec2Config(conv_layers=_wfe_o(channels), dim=dim, num_layers=layers,
                          num_heads=dim // 64, ffn_dim=4 * dim)


def _sew(cls, dim, layers, layerdrop, channels=64):
    return cls(conv_layers=wfe_c_layers(channels), dim=dim, num_layers=layers, num_heads=dim // 64,
               ffn_dim=4 * dim, pos_conv_kernel=31, pos_conv_groups=16, squeeze_factor=2,
               layerdrop=layerdrop)


ZOO = {
    "w2v2_tiny": lambda: _w2v2(256, 256, 12),
    "w2v2_small": lambda: _w2v2(384, 384, 12),
    "w2v2_mid": lambda: _w2v2(512, 512, 12),
    "w2v2_base": lambda: _w2v2(512, 768, 12),
    "w2v2_large": lambda: _w2v2(512, 1024, 24),  # LS-960 wav2vec2-large: post-LN, GroupNorm CNN
    "sew_tiny": lambda: _sew(SEWConfig, 512, 12, 0.05),
    "sew_small": lambda: _sew(SEWConfig, 768, 12, 0.05),
    "sew_mid": lambda: _sew(SEWConfig, 768, 24, 0.2),
    "sewd_tiny": lambda: _sew(SEWDConfig, 384, 12, 0.05),
    "sewd_small": lambda: _sew(SEWDConfig, 512, 12, 0.05),
    "sewd_mid": lambda: _sew(SEWDConfig, 512, 24, 0.2),
    "sewd_base": lambda: _sew(SEWDConfig, 768, 24, 0.2),
    "sewd_base_plus": lambda: _sew(SEWDConfig, 768, 24, 0.2, channels=96),
    "w2v2_micro": Wav2Vec2Config.micro,
    "sew_micro": SEWConfig.micro,
    "sewd_micro": SEWDConfig.micro,
}


def zoo_config(name):
    """A fresh config object for zoo model ``name``."""
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {sorted(ZOO)}")
    return ZOO[name]()

