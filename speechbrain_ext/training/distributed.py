"""What a recipe needs to know about the processes of a torchrun job.

>>> world_size(), sum_over_processes(1.5, 2.0)  # no torchrun job here
(1, [1.5, 2.0])
"""
import torch


def unwrap(module):
    """The module inside DDP / DataParallel wrappers."""
    return getattr(module, "module", module)


def world_size():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def sum_over_processes(*values):
    """``values`` (floats) summed over the processes of a torchrun job, in
    one collective; unchanged without one."""
    total = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if world_size() > 1:
        torch.distributed.all_reduce(total)
    return total.tolist()
