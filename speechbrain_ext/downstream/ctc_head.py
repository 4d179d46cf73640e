"""The CTC head of the sequence downstream tasks and its loss.

Example
-------
>>> head = CTCHead(input_size=64, num_tokens=29, project_dim=32, rnn_layers=2, rnn_size=16)
>>> log_probs = head(torch.randn(2, 50, 64), torch.tensor([50, 30]))
>>> log_probs.shape   # [batch, frames, tokens]
torch.Size([2, 50, 29])
>>> loss = ctc_loss(log_probs, torch.tensor([[3, 4], [5, 0]]), torch.tensor([50, 30]),
...                 torch.tensor([2, 1]))
>>> loss.dim(), bool(loss > 0)
(0, True)
"""
import torch
import torch.nn.functional as F
from torch import nn


class CTCHead(nn.Module):
    """Frame classifier for CTC: Linear projection, optional bidirectional
    LSTM stack, Linear to the tokens, log-softmax.

    ``rnn_layers=0`` is SUPERB's PR head (two linear maps, i.e. a linear
    head); ``rnn_layers=2, rnn_size=1024`` is the ASR / SF / ASR-zh head
    (s3prl: project to 1024, 2 BiLSTM layers of 1024 per direction, dropout
    0.2 after each). Padded frames are packed away so that the backward
    direction starts at each utterance's last real frame.

    Arguments
    ---------
    input_size : int
        Feature size of the upstream representation.
    num_tokens : int
        Output classes (blank included).
    project_dim : int
        Size of the first linear projection.
    rnn_layers : int
        Bidirectional LSTM layers (0: none).
    rnn_size : int
        Hidden units per direction.
    dropout : float
        Dropout after each LSTM layer.
    rnn_projection : bool
        After each LSTM layer (and its dropout), a square Linear + tanh
        (s3prl's ``proj: True``, used by its Common Voice configs).

    Example
    -------
    >>> head = CTCHead(input_size=8, num_tokens=5, project_dim=4)
    >>> head(torch.randn(3, 7, 8), torch.tensor([7, 5, 1])).exp().sum(-1).allclose(torch.ones(3, 7))
    True
    """

    def __init__(self, input_size, num_tokens, project_dim=1024, rnn_layers=2, rnn_size=1024,
                 dropout=0.2, rnn_projection=False):
        super().__init__()
        self.projection = nn.Linear(input_size, project_dim)
        self.rnns = nn.ModuleList(
            nn.LSTM(project_dim if k == 0 else 2 * rnn_size, rnn_size, batch_first=True,
                    bidirectional=True) for k in range(rnn_layers))
        self.rnn_projections = nn.ModuleList(
            nn.Linear(2 * rnn_size, 2 * rnn_size) for _ in range(rnn_layers if rnn_projection else 0))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * rnn_size if rnn_layers else project_dim, num_tokens)

    def forward(self, features, frame_lengths):
        """``features`` ``[batch, frames, input_size]``, ``frame_lengths``
        ``[batch]`` -> log-probabilities ``[batch, frames, num_tokens]``."""
        x = self.projection(features)
        frames = x.shape[1]
        lengths = frame_lengths.clamp(min=1, max=frames).cpu()
        for k, rnn in enumerate(self.rnns):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                       enforce_sorted=False)
            x, _ = rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=frames)
            x = self.dropout(x)
            if self.rnn_projections:
                x = torch.tanh(self.rnn_projections[k](x))
        return F.log_softmax(self.output(x), dim=-1)


def ctc_loss(log_probs, targets, frame_lengths, target_lengths, blank_index=0):
    """Mean CTC loss over the batch, each utterance's loss divided by its
    target length (PyTorch's ``reduction="mean"``); utterances too short
    for their target contribute 0 (s3prl's ``zero_infinity: True``).

    ``log_probs`` ``[batch, frames, tokens]``, ``targets`` ``[batch, max
    target]`` (padded), lengths ``[batch]`` in frames / tokens.
    """
    return F.ctc_loss(log_probs.transpose(0, 1).float(), targets, frame_lengths, target_lengths,
                      blank=blank_index, reduction="mean", zero_infinity=True)
