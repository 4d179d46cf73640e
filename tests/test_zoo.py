"""The model zoo: parameter counts against paper 002's tables, the listing
command, and zoo names in backbone configs."""
import subprocess
import sys
from pathlib import Path

import pytest

from speechbrain_ext.models.registry import backbone_config, build_backbone, count_parameters
from speechbrain_ext.models.sew import SEWDBackbone
from speechbrain_ext.models.zoo import ZOO, zoo_config

REPO = Path(__file__).resolve().parents[1]

# Paper 002, millions of parameters without quantizer and pre-training heads:
# Table 1 (W2V2 / SEW-D sizes), Table 4 (W2V2-large), Table 6 row 7 (SEW-tiny).
PAPER_002_PARAMS = {
    "w2v2_tiny": 11.1, "sewd_tiny": 24.1,
    "w2v2_small": 24.8, "sewd_small": 41.0,
    "w2v2_mid": 44.1, "sewd_mid": 78.8,
    "w2v2_base": 94.4, "sewd_base": 175.1, "sewd_base_plus": 177.0,
    "w2v2_large": 315.5,
    "sew_tiny": 40.7,
}


@pytest.mark.parametrize("name", sorted(PAPER_002_PARAMS))
def test_parameter_counts_match_paper_002(name):
    millions = count_parameters(zoo_config(name)) / 1e6
    assert abs(millions - PAPER_002_PARAMS[name]) < 0.1, (name, millions)


def test_projection_is_not_counted_when_widths_agree():
    """fairseq has no post_extract_proj when CNN width == model width; the
    count leaves out exactly that Linear (W2V2-tiny: 256 x 256 + 256)."""
    config = zoo_config("w2v2_tiny")
    model = build_backbone(config)
    assert sum(p.numel() for p in model.parameters()) - count_parameters(config) == 256 * 256 + 256


def test_listing_command_prints_every_model_with_its_count():
    proc = subprocess.run([sys.executable, "-m", "speechbrain_ext.models"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == list(ZOO)
    for name, millions in rows:
        assert float(millions) == round(count_parameters(zoo_config(name)) / 1e6, 2)
        if name in PAPER_002_PARAMS:
            assert abs(float(millions) - PAPER_002_PARAMS[name]) < 0.1


def test_zoo_names_select_backbones_from_a_yaml_config():
    config = backbone_config({"zoo": "sewd_base", "layerdrop": 0.0, "dropout": 0.0})
    assert (config.dim, config.num_layers, config.layerdrop) == (768, 24, 0.0)
    assert config.conv_layers[0] == (64, 10, 5) and len(config.conv_layers) == 13
    assert zoo_config("sewd_base_plus").conv_layers[-1][0] == 8 * 96
    assert type(build_backbone({"zoo": "sewd_micro"})) is SEWDBackbone
    with pytest.raises(ValueError, match="unknown zoo model 'sewd_huge'"):
        backbone_config({"zoo": "sewd_huge"})
    with pytest.raises(ValueError, match="'sewd' backbone, but architecture is 'wav2vec2'"):
        backbone_config({"zoo": "sewd_tiny", "architecture": "wav2vec2"})
