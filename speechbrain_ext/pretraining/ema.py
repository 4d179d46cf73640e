"""Exponential moving average (momentum) copy of a network.

The target network of the non-contrastive method (paper 000) is not trained by
gradient descent: after each optimizer update its parameters follow the
online network's, ``target = decay * target + (1 - decay) * online``.
Buffers (e.g. BatchNorm running statistics) are copied as they are.

:func:`ema_update` works on any two modules with the same structure;
:class:`ExponentialMovingAverage` owns a frozen deep copy of the online
module (so it is saved by a SpeechBrain ``Checkpointer`` as a module).
"""
import copy

import torch
from torch import nn


@torch.no_grad()
def ema_update(target_module, online_module, decay):
    """Moves ``target_module`` towards ``online_module`` in place.

    Floating-point parameters become ``decay * target + (1 - decay) * online``;
    other parameters and all buffers are copied.

    Arguments
    ---------
    target_module : torch.nn.Module
        The moving-average copy (updated in place).
    online_module : torch.nn.Module
        The trained network; same parameter and buffer names and shapes.
    decay : float
        In ``[0, 1]``; 1 keeps the target, 0 copies the online network.

    Example
    -------
    >>> target, online = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> _ = target.weight.data.fill_(1.0); _ = online.weight.data.fill_(3.0)
    >>> ema_update(target, online, decay=0.9)
    >>> target.weight.data
    tensor([[1.2000, 1.2000]])
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    target_params = dict(target_module.named_parameters())
    online_params = dict(online_module.named_parameters())
    target_buffers = dict(target_module.named_buffers())
    online_buffers = dict(online_module.named_buffers())
    same_params = target_params.keys() == online_params.keys()
    if not same_params or target_buffers.keys() != online_buffers.keys():
        missing = (online_params.keys() | online_buffers.keys()) ^ (
            target_params.keys() | target_buffers.keys()
        )
        raise ValueError(f"target and online modules differ in: {sorted(missing)}")
    for name, target in target_params.items():
        online = online_params[name].detach()
        if target.is_floating_point():
            target.lerp_(online.to(target.dtype), 1.0 - decay)
        else:
            target.copy_(online)
    for name, target in target_buffers.items():
        target.copy_(online_buffers[name])


class ExponentialMovingAverage(nn.Module):
    """A frozen moving-average copy of ``online_module``.

    The copy's parameters have ``requires_grad=False``, so it never receives
    gradients (and an optimizer built over all modules skips it); run it
    under ``torch.no_grad()``.  Its train/eval mode is left to the caller.

    Arguments
    ---------
    online_module : torch.nn.Module
        The network to follow; deep-copied at construction.
    decay : float
        Momentum of :meth:`update`.

    Example
    -------
    >>> online = torch.nn.Linear(3, 2)
    >>> ema = ExponentialMovingAverage(online, decay=0.99)
    >>> ema.target.weight.requires_grad
    False
    >>> _ = online.weight.data.add_(1.0)
    >>> ema.update(online)
    >>> torch.allclose(ema.target.weight, online.weight - 0.99)
    True
    """

    def __init__(self, online_module, decay=0.999):
        super().__init__()
        self.decay = decay
        self.target = copy.deepcopy(online_module)
        self.target.requires_grad_(False)

    @torch.no_grad()
    def update(self, online_module, decay=None):
        """One EMA step towards ``online_module`` (``decay`` overrides the default)."""
        ema_update(self.target, online_module, self.decay if decay is None else decay)

    def forward(self, *args, **kwargs):
        """Runs the target network."""
        return self.target(*args, **kwargs)
