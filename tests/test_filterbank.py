"""The filter-bank front end (FBFE, paper 002 Table 6 row 9): frame counts at
the WFE's 20 ms rate, padding-independent frames, the backbones built on it
(``extractor_mode: fbfe``), its parameters, and pre-training on it."""
import pytest
import torch

from speechbrain_ext.models.feature_extractor import ConvFeatureExtractor
from speechbrain_ext.models.filterbank import FilterBankFeatureExtractor, fbfe_layers
from speechbrain_ext.models.registry import (build_backbone, count_parameters, read_backbone_file,
                                             save_backbone)
from speechbrain_ext.models.sew import SEWConfig, SEWDConfig, wfe_c_layers
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Config
from speechbrain_ext.models.zoo import zoo_config


def micro_fbfe(cls=SEWConfig, **overrides):
    return cls.micro(extractor_mode="fbfe", conv_layers=fbfe_layers(8), conv_bias=True, **overrides)


@pytest.fixture(scope="module")
def front_end():
    torch.manual_seed(0)
    return FilterBankFeatureExtractor(fbfe_layers(8), output_dim=16).eval()


def test_output_lengths_count_the_frames_it_makes(front_end):
    lengths = [800, 1000, 3999, 4000, 4159, 4160, 4319, 4320, 16000, 16079, 16080, 23456]
    for n in lengths:
        frames = front_end(torch.randn(1, n)).shape[1]
        assert frames == int(front_end.output_lengths(n)) == int(front_end.output_lengths(torch.tensor([n]))[0])


def test_frame_rate_is_the_wfe_c_rate():
    """10 ms filter-bank hop x total stride 2 = WFE-C's 320-sample step: the
    same frame count as WFE-C for a second of audio, at most one frame fewer."""
    fbfe = FilterBankFeatureExtractor(fbfe_layers(160), output_dim=512)
    wfe = ConvFeatureExtractor(wfe_c_layers(64))
    assert int(fbfe.output_lengths(16000)) == int(wfe.output_lengths(16000)) == 49
    samples = torch.arange(1000, 48000, 37)
    difference = wfe.output_lengths(samples) - fbfe.output_lengths(samples)
    assert set(difference.tolist()) <= {0, 1}
    many = torch.tensor([160000, 320000])  # 10 s, 20 s: 500 and 1000 frames (one fewer)
    assert fbfe.output_lengths(many).tolist() == [499, 999]


def test_frames_do_not_depend_on_the_padding(front_end):
    """Statistics over the utterance's own frames, padded frames zeroed: the
    same utterance padded to two lengths gives the same valid frames."""
    torch.manual_seed(1)
    wav = torch.randn(10000)
    a = torch.zeros(2, 14000)
    b = torch.zeros(2, 20000)
    a[0], b[0] = torch.randn(14000), torch.randn(20000)
    a[1, :10000] = b[1, :10000] = wav
    with torch.no_grad():
        fa = front_end(a, torch.tensor([14000, 10000]))
        fb = front_end(b, torch.tensor([20000, 10000]))
        alone = front_end(wav[None], torch.tensor([10000]))
    valid = int(front_end.output_lengths(10000))
    torch.testing.assert_close(fa[1, :valid], fb[1, :valid], rtol=1e-5, atol=1e-5)
    # unpadded: the lengths change nothing
    torch.testing.assert_close(alone, front_end(wav[None]), rtol=0, atol=0)
    # the stats of a lone utterance: its own frames (the frames near its end differ a bit in
    # a padded batch, where zeros follow instead of the STFT's reflection)
    torch.testing.assert_close(fa[1, : valid - 2], alone[0, : valid - 2], rtol=1e-3, atol=1e-3)


def test_log_mels_are_normalised_and_fp32_under_autocast(front_end):
    wav = 0.1 * torch.randn(2, 16000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mels = front_end.log_mels(wav)
    assert mels.dtype == torch.float32 and mels.shape == (2, 101, 80)
    torch.testing.assert_close(mels.mean(dim=1), torch.zeros(2, 80), atol=1e-4, rtol=0)
    torch.testing.assert_close(mels.std(dim=1, unbiased=False), torch.ones(2, 80), atol=1e-3, rtol=0)


def test_state_holds_only_the_learned_layers(front_end):
    assert list(front_end.state_dict()) == [
        "conv_layers.0.conv.weight", "conv_layers.0.conv.bias",
        "conv_layers.1.conv.weight", "conv_layers.1.conv.bias",
        "projection.weight", "projection.bias"]
    assert front_end.projection.in_features == 8 * 38  # 80 mels -> 78 -> 38


def test_parameter_count_of_row_9_is_sew_tiny_with_the_fbfe():
    """Row 9 = row 7 with FBFE-c160 (Linear 160 x 38 -> 512) instead of WFE-C-c64-11."""
    fbfe, wfe = zoo_config("sew_tiny_fbfe"), zoo_config("sew_tiny")
    wfe_params = sum(p.numel() for p in ConvFeatureExtractor(wfe.conv_layers).parameters())
    fbfe_params = (160 * 9 + 160) + (160 * 160 * 9 + 160) + (160 * 38 * 512 + 512)
    assert count_parameters(fbfe) == count_parameters(wfe) - wfe_params + fbfe_params
    assert round(count_parameters(fbfe) / 1e6, 1) == 42.2  # paper 002 Table 6 row 9


@pytest.mark.parametrize("cls", [SEWConfig, SEWDConfig, Wav2Vec2Config])
def test_backbones_run_on_the_filter_bank_front_end(cls, tmp_path):
    torch.manual_seed(0)
    config = micro_fbfe(cls)
    model = build_backbone({"architecture": {SEWConfig: "sew", SEWDConfig: "sewd",
                                             Wav2Vec2Config: "wav2vec2"}[cls], **config.to_dict()})
    assert isinstance(model.feature_extractor, FilterBankFeatureExtractor)
    wav, lens = torch.randn(2, 16000), torch.tensor([1.0, 0.5])
    out = model(wav, wav_lens=lens, span_mask=(0.3, 3, 1))
    assert out.features.shape == (2, 49, 64) and out.last_hidden_state.shape == (2, 49, 64)
    assert out.frame_mask.sum(dim=1).tolist() == model.frame_lengths(torch.tensor([16000, 8000])).tolist()
    out.last_hidden_state.sum().backward()
    assert model.feature_extractor.conv_layers[0].conv.weight.grad.abs().sum() > 0
    # saved and read back with its config: the same network
    model.eval()
    again = read_backbone_file(save_backbone(model, tmp_path / "fbfe.ckpt")).eval()
    assert again.config.extractor_mode == "fbfe"
    with torch.no_grad():
        torch.testing.assert_close(again(wav, lens).last_hidden_state, model(wav, lens).last_hidden_state)
    # fairseq's count: wav2vec2's projection is left out where the widths agree
    if cls is Wav2Vec2Config:
        total = sum(p.numel() for p in model.parameters())
        assert total - count_parameters(config) == 64 * 64 + 64


def test_contrastive_pretraining_runs_on_the_filter_bank_front_end():
    from speechbrain_ext.pretraining.wav2vec2 import Wav2Vec2ContrastiveModel

    torch.manual_seed(0)
    model = Wav2Vec2ContrastiveModel(micro_fbfe(), mask_prob=0.3, mask_length=3, num_negatives=5,
                                     codevector_dim=32, final_dim=32, mlp_hidden_dim=64)
    out = model(torch.randn(2, 16000), torch.tensor([1.0, 0.75]))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()


def test_a_wrong_extractor_mode_names_the_filter_bank_choice():
    with pytest.raises(ValueError, match="'fbfe'"):
        build_backbone(SEWConfig.micro(extractor_mode="fbank"))
