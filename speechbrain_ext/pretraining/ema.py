"""Exponential moving average (momentum) copy of a network.

The target network of the non-contrastive method (paper 000) is not trained by
gradient descent: after each optimizer update its parameters follow the
online network's, ``target = decay * target + (1 - decay) * online``.
Buffers (e.g. BatchNorm running statistics) are copied as they are.

:func:`ema_update` works on any two modules with the same structure (the
non-contrastive model keeps a frozen deep copy of its online network).
``torch.optim.swa_utils.AveragedModel`` with an EMA function would own a
copy of the online network as ``module.*`` plus an ``n_averaged`` buffer:
other state-dict names than the target backbone's (which is saved and loaded
as a backbone), so the update is written here.
"""

import torch


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
