"""The model zoo: parameter counts against paper 002's tables, the listing
command, and zoo names in backbone configs."""
import subprocess
import sys
from pathlib import Path

import pytest

from speechbrain_ext.models.registry import backbone_config, build_backbone, count_parameters
from speechbrain_ext.models.sew import SEWDBackbone
from speechbrain_ext.models.zoo import TABLE6, TABLE6_MLP_HEADS, ZOO, zoo_config

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


# Paper 002 (SEW / SEW-D), Table 6 "Ablation study with a controlled inference
# time", column "# Par. (M)", rows 1-9 as printed. The text copy runs rows 3-8
# into one line, "23.9 27.2 41.7 40.7 40.7 24.1": row 6 (Sq-W2V E512L12 conv k31
# + WFE-C-c64-11) 40.7, row 7 (+ MLP predictor heads, SEW-tiny) 40.7, row 8
# (+ disentangled attention, SEW-D-tiny) 24.1 (Table 1's SEW-D-tiny); rows 6
# and 7 agree because the count leaves the pre-training heads out.
PAPER_002_TABLE6_PARAMS = {1: 24.8, 2: 11.1, 3: 23.9, 4: 27.2, 5: 41.7, 6: 40.7, 7: 40.7,
                           8: 24.1, 9: 42.2}


@pytest.mark.parametrize("row", sorted(PAPER_002_TABLE6_PARAMS))
def test_table6_parameter_counts_match_paper_002(row):
    millions = count_parameters(zoo_config(TABLE6[row])) / 1e6
    assert abs(millions - PAPER_002_TABLE6_PARAMS[row]) < 0.1, (row, TABLE6[row], millions)


def test_table6_rows_reuse_the_zoo_sizes():
    assert sorted(TABLE6) == list(range(1, 10))
    assert set(TABLE6.values()) <= set(ZOO)
    assert (TABLE6[1], TABLE6[2], TABLE6[8]) == ("w2v2_small", "w2v2_tiny", "sewd_tiny")
    # rows 6 and 7 differ only in the pre-training heads, not in the backbone
    assert TABLE6[6] == TABLE6[7] == "sew_tiny" and TABLE6_MLP_HEADS == {7, 8, 9}
    # no two zoo names hold the same architecture
    configs = {name: repr(zoo_config(name)) for name in ZOO}
    assert len(set(configs.values())) == len(configs)
    # Sq-W2V rows: squeezed (SEW) backbones with wav2vec2's positional conv k128
    for row in (3, 4, 5):
        config = zoo_config(TABLE6[row])
        assert type(config).__name__ == "SEWConfig" and config.pos_conv_kernel == 128
    assert [zoo_config(TABLE6[r]).conv_layers[0][0] for r in (3, 4, 5, 6)] == [256, 96, 48, 64]
    assert len(zoo_config(TABLE6[4]).conv_layers) == 13  # "-11": 1x1 convs between
    fbfe, sew_tiny = zoo_config(TABLE6[9]), zoo_config("sew_tiny")
    assert fbfe.extractor_mode == "fbfe" and fbfe.conv_layers == [(160, 3, 1), (160, 3, 2)]
    rest = {k: v for k, v in fbfe.to_dict().items() if k not in ("extractor_mode", "conv_layers", "conv_bias")}
    assert rest == {k: v for k, v in sew_tiny.to_dict().items() if k in rest}


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
    header, *lines = proc.stdout.strip().splitlines()
    assert header.split() == ["model", "architecture", "dim", "layers", "params", "(M)"]
    rows = [line.split() for line in lines]
    assert [r[0] for r in rows] == list(ZOO)
    for name, kind, dim, layers, millions in rows:
        config = zoo_config(name)
        assert (int(dim), int(layers)) == (config.dim, config.num_layers) and kind in ("wav2vec2", "sew", "sewd")
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


def test_a_wrong_zoo_name_names_the_nearest_ones():
    with pytest.raises(ValueError, match=r"unknown zoo model 'sewd_tine'; nearest: sewd_tiny, "):
        backbone_config({"zoo": "sewd_tine"})
    with pytest.raises(ValueError, match="unknown zoo model 'nope'; expected one of w2v2_tiny, "):
        zoo_config("nope")  # nothing near: every name
    with pytest.raises(ValueError, match="unknown zoo model 3"):
        zoo_config(3)  # a YAML number


def test_inference_time_takes_any_zoo_name_and_names_the_nearest_on_a_wrong_one():
    script = [sys.executable, str(REPO / "results" / "inference_time.py"), "--utterances", "1",
              "--repeats", "1", "--data_folder", "", "--reference", "w2v2_micro", "--models"]
    proc = subprocess.run(script + ["sq_w2v_e384_wfe_c_c96", "sew_tiny_fbfe"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if not line.startswith("#")}
    assert {"w2v2_micro", "sq_w2v_e384_wfe_c_c96", "sew_tiny_fbfe"} <= set(rows)
    assert float(rows["sew_tiny_fbfe"][1]) == 42.2
    proc = subprocess.run(script + ["sew_tiny_fbe"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "unknown zoo model 'sew_tiny_fbe'; nearest: sew_tiny_fbfe" in proc.stderr
