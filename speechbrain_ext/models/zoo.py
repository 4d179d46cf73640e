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

Table 6 (paper 002's ablation at a controlled inference time): ``TABLE6``
maps each row to its zoo name. "Sq-W2V" is a squeezed wav2vec2 without MLP
heads: a SEW backbone (``SEWConfig``), rows 3-5 with wav2vec2's positional
conv k128 (row 6 brings k31). The MLP predictor heads of rows 7-9 belong to
the pre-training objective (``mlp_hidden_dim: 4096`` in the pre-training
YAML, ``speechbrain_ext.pretraining.heads``), not to the backbone, and the
paper does not count them (rows 6 and 7 both 40.7 M): rows 6 and 7 are one
backbone, ``sew_tiny``, pre-trained with linear (row 6) or MLP heads (row
7; ``TABLE6_MLP_HEADS``). Row 9 is row 7 with the filter-bank front end
FBFE-c160 instead of WFE-C-c64-11 (``speechbrain_ext.models.filterbank``).

Example
-------
>>> cfg = zoo_config("sewd_tiny")
>>> type(cfg).__name__, cfg.dim, cfg.num_layers, cfg.num_heads
('SEWDConfig', 384, 12, 6)
>>> from speechbrain_ext.models.registry import count_parameters
>>> round(count_parameters(zoo_config("w2v2_tiny")) / 1e6, 1)  # paper 002 Table 1: 11.1
11.1
>>> TABLE6[9], zoo_config(TABLE6[9]).extractor_mode
('sew_tiny_fbfe', 'fbfe')
"""
import difflib

from speechbrain_ext.models.feature_extractor import WAV2VEC2_CONV_LAYERS
from speechbrain_ext.models.filterbank import fbfe_layers
from speechbrain_ext.models.sew import SEWConfig, SEWDConfig, wfe_c_layers
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config


def _wfe_o(channels):
    return [(channels, k, s) for _, k, s in WAV2VEC2_CONV_LAYERS]


def _w2v2(channels, dim, layers):
    return Wav2Vec2Config(conv_layers=_wfe_o(channels), dim=dim, num_layers=layers,
                          num_heads=dim // 64, ffn_dim=4 * dim)


def _sew(cls, dim, layers, layerdrop, channels=64, conv_layers=None, pos_conv_kernel=31, **extra):
    return cls(conv_layers=conv_layers or wfe_c_layers(channels), dim=dim, num_layers=layers,
               num_heads=dim // 64, ffn_dim=4 * dim, pos_conv_kernel=pos_conv_kernel,
               pos_conv_groups=16, squeeze_factor=2, layerdrop=layerdrop, **extra)


def _sq_w2v(dim, conv_layers):
    """Table 6's "Sq-W2V": a SEW backbone with wav2vec2's positional conv k128."""
    return _sew(SEWConfig, dim, 12, 0.05, conv_layers=conv_layers, pos_conv_kernel=128)


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
    # Table 6 rows 3-5 and 9 (the other rows are the sizes above)
    "sq_w2v_e384_wfe_o_c256": lambda: _sq_w2v(384, _wfe_o(256)),
    "sq_w2v_e384_wfe_c_c96": lambda: _sq_w2v(384, wfe_c_layers(96)),
    "sq_w2v_e512_wfe_c_c48": lambda: _sq_w2v(512, wfe_c_layers(48)),
    # FBFE convs keep their biases (no norm follows them)
    "sew_tiny_fbfe": lambda: _sew(SEWConfig, 512, 12, 0.05, conv_layers=fbfe_layers(160),
                                  extractor_mode="fbfe", conv_bias=True),
    "w2v2_micro": Wav2Vec2Config.micro,
    "sew_micro": SEWConfig.micro,
    "sewd_micro": SEWDConfig.micro,
}


# paper 002 Table 6: row -> zoo name (WFE-C-cC-11 = wfe_c_layers(C), the "-11" variant)
TABLE6 = {
    1: "w2v2_small",  # W2V2-small E384L12 + WFE-O-c384
    2: "w2v2_tiny",  # W2V2-tiny E256L12 + WFE-O-c256
    3: "sq_w2v_e384_wfe_o_c256",  # Sq-W2V E384L12 + WFE-O-c256
    4: "sq_w2v_e384_wfe_c_c96",  # Sq-W2V E384L12 + WFE-C-c96-11
    5: "sq_w2v_e512_wfe_c_c48",  # Sq-W2V E512L12 + WFE-C-c48-11
    6: "sew_tiny",  # Sq-W2V E512L12 (conv k31) + WFE-C-c64-11, linear heads
    7: "sew_tiny",  # + MLP predictor heads (SEW-tiny)
    8: "sewd_tiny",  # + disentangled attention, E384 (SEW-D-tiny)
    9: "sew_tiny_fbfe",  # #7 - WFE-C-c64-11 + FBFE-c160
}
# rows pre-trained with MLP predictor heads (mlp_hidden_dim: 4096 in the pre-training YAML)
TABLE6_MLP_HEADS = frozenset({7, 8, 9})


def zoo_config(name):
    """A fresh config object for zoo model ``name``; an unknown name is a
    ``ValueError`` naming the nearest ones.

    >>> zoo_config("sew_tiny_fbe")
    Traceback (most recent call last):
    ...
    ValueError: unknown zoo model 'sew_tiny_fbe'; nearest: sew_tiny_fbfe, sew_tiny, sewd_tiny (all: python -m speechbrain_ext.models)
    """
    if not isinstance(name, str) or name not in ZOO:
        nearest = difflib.get_close_matches(str(name), list(ZOO), n=3, cutoff=0.5)
        hint = (f"nearest: {', '.join(nearest)}" if nearest
                else f"expected one of {', '.join(ZOO)}")
        raise ValueError(f"unknown zoo model {name!r}; {hint} (all: python -m speechbrain_ext.models)")
    return ZOO[name]()

