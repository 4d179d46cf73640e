"""MLP predictor heads with BatchNorm (paper 002, Sec. 3.3; SimCLR-style).

``Linear(in -> hidden, no bias) -> BatchNorm1d (fp32) -> ReLU -> Linear(hidden
-> out)``, hidden 4096, Xavier-normal weights: as asappresearch/sew's
``MLPv2`` with ``norm_type='bn'``. Paper 002's text says "BatchNorm after each
linear layer"; the authors' code normalises after the first one only, which
we follow. The heads replace wav2vec2's linear ``project_q`` / ``final_proj``
and are dropped after pre-training.

Example
-------
>>> import torch
>>> head = MLPHead(16, 8, hidden_dim=32)
>>> head(torch.randn(10, 16)).shape  # [frames, features]
torch.Size([10, 8])
>>> head(torch.randn(2, 5, 16)).shape  # [batch, time, features]: BatchNorm over all frames
torch.Size([2, 5, 8])
"""
from torch import nn


class MLPHead(nn.Module):
    """Two-layer MLP with BatchNorm and ReLU in between.

    Arguments
    ---------
    input_dim, output_dim : feature sizes
    hidden_dim : 4096 in paper 002
    """

    def __init__(self, input_dim, output_dim, hidden_dim=4096):
        super().__init__()
        self.hidden = nn.Linear(input_dim, hidden_dim, bias=False)  # BatchNorm has the bias
        self.norm = nn.BatchNorm1d(hidden_dim)
        self.activation = nn.ReLU()
        self.output = nn.Linear(hidden_dim, output_dim)
        for layer in (self.hidden, self.output):
            nn.init.xavier_normal_(layer.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x):
        """``[N, input_dim]`` or ``[B, T, input_dim]`` -> same leading shape, ``output_dim``."""
        lead = x.shape[:-1]
        h = self.hidden(x.reshape(-1, x.shape[-1]))
        # statistics in fp32 under autocast (asappresearch/sew's FP32BatchNorm1d)
        h = self.norm(h.float()).to(h.dtype)
        return self.output(self.activation(h)).reshape(*lead, -1)


def projection_head(input_dim, output_dim, mlp_hidden_dim=None):
    """A linear projection (wav2vec2) or, with ``mlp_hidden_dim``, an ``MLPHead`` (SEW / SEW-D)."""
    if mlp_hidden_dim:
        return MLPHead(input_dim, output_dim, mlp_hidden_dim)
    return nn.Linear(input_dim, output_dim)
