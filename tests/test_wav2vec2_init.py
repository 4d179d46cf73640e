"""The backbone starts from fairseq's initialisation, not PyTorch's defaults."""
import math

import torch

from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config


def test_fairseq_initialisation_statistics():
    torch.manual_seed(0)
    model = Wav2Vec2Backbone(Wav2Vec2Config(num_layers=2))
    first = model.feature_extractor.conv_layers[1].conv.weight  # 512 x 512 x 3
    assert abs(first.std().item() - math.sqrt(2.0 / (512 * 3))) < 2e-3  # Kaiming normal
    for name, p in model.encoder.layers.named_parameters():
        if p.dim() == 2:
            assert abs(p.std().item() - 0.02) < 1e-3, name
        elif name.endswith("bias") and "norm" not in name:
            assert torch.count_nonzero(p) == 0, name
    pos = model.encoder.pos_conv_embed.conv.weight
    assert abs(pos.std().item() - math.sqrt(4.0 / (128 * 768))) < 2e-4


def test_cnn_features_keep_their_scale_at_initialisation():
    """With PyTorch's default init the signal dies in the unnormalised conv
    blocks (mean square ~1e-7); fairseq's init keeps it near unit scale."""
    torch.manual_seed(0)
    model = Wav2Vec2Backbone(Wav2Vec2Config.micro()).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 16000) * 0.1)
    assert 1e-2 < out.feature_penalty.item() < 10


def test_conv_biases_keep_pytorch_default_init_as_fairseq():
    """fairseq only re-initialises the CNN weights: with ``conv_bias`` the
    biases keep PyTorch's uniform(+-1/sqrt(fan_in)) (zero biases would make a
    layer_norm-mode block map silence and speech to the same scale)."""
    torch.manual_seed(0)
    model = Wav2Vec2Backbone(Wav2Vec2Config(num_layers=1, extractor_mode="layer_norm", conv_bias=True))
    for block in model.feature_extractor.conv_layers:
        bias, fan_in = block.conv.bias, block.conv.in_channels * block.conv.kernel_size[0]
        bound = 1.0 / math.sqrt(fan_in)
        assert bias.abs().max().item() <= bound
        assert bias.std().item() > 0.4 * bound  # uniform: std = bound / sqrt(3)
    weight = model.feature_extractor.conv_layers[1].conv.weight
    assert abs(weight.std().item() - math.sqrt(2.0 / (512 * 3))) < 2e-3  # still Kaiming normal
