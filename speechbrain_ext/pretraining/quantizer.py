"""Gumbel-softmax product quantizer of wav2vec 2.0.

:class:`GumbelVectorQuantizer` maps latent frames to the concatenation of one
codeword per group.  Parameter names and shapes are those of HF transformers'
``Wav2Vec2GumbelVectorQuantizer`` (``codevectors`` ``[1, G * V, D // G]`` and
``weight_proj`` ``Linear(input_dim, G * V)``), so state dicts interchange.

Training selects codewords with the hard (straight-through) Gumbel-softmax at
the current temperature; evaluation takes the argmax of the logits.  All of
the selection, including the logits, runs in fp32 with autocast disabled.

The temperature is a plain Python float (no buffer, as in HF and fairseq):
after resuming a run, call :meth:`GumbelVectorQuantizer.set_num_updates`
with the optimizer step count again.
"""
import torch
from torch import nn


def perplexity(probabilities):
    """Sum over groups of ``exp(entropy)`` of the frame-averaged distribution.

    fairseq's definition (with its ``1e-7`` inside the log): the distribution
    of each group is averaged over all given frames first.

    Arguments
    ---------
    probabilities : torch.Tensor
        ``[frames, groups, num_vars]``, each ``[f, g, :]`` summing to one.

    Returns
    -------
    torch.Tensor
        Scalar in ``[groups, groups * num_vars]``.

    Example
    -------
    >>> uniform = torch.full((5, 2, 4), 0.25)
    >>> round(perplexity(uniform).item(), 3)
    8.0
    """
    average = probabilities.mean(dim=0)
    entropy = -(average * torch.log(average + 1e-7)).sum(dim=-1)
    return torch.exp(entropy).sum()


class GumbelVectorQuantizer(nn.Module):
    """Product quantizer with ``num_groups`` codebooks of ``num_vars`` entries.

    Arguments
    ---------
    input_dim : int
        Feature size of the frames to quantize (512 for the wav2vec 2.0 CNN).
    num_groups : int
        Number of codebooks ``G``.
    num_vars : int
        Entries per codebook ``V``.
    codevector_dim : int
        Size of the output vector (concatenation of ``G`` codewords of
        ``codevector_dim // G`` each).
    max_temp, min_temp, temp_decay : float
        Temperature schedule ``max(max_temp * temp_decay ** n, min_temp)``
        after ``n`` optimizer updates.

    Example
    -------
    >>> quantizer = GumbelVectorQuantizer(16, num_groups=2, num_vars=8, codevector_dim=12)
    >>> codes, stats = quantizer(torch.randn(3, 5, 16))
    >>> codes.shape
    torch.Size([3, 5, 12])
    >>> sorted(stats)
    ['code_perplexity', 'prob_perplexity', 'temperature']
    >>> quantizer.set_num_updates(10**7)
    >>> quantizer.temperature
    0.5
    """

    def __init__(
        self,
        input_dim,
        num_groups=2,
        num_vars=320,
        codevector_dim=256,
        max_temp=2.0,
        min_temp=0.5,
        temp_decay=0.999995,
    ):
        super().__init__()
        if codevector_dim % num_groups != 0:
            raise ValueError(
                f"codevector_dim={codevector_dim} is not divisible by num_groups={num_groups}"
            )
        self.num_groups = num_groups
        self.num_vars = num_vars
        self.codevector_dim = codevector_dim
        self.max_temp = max_temp
        self.min_temp = min_temp
        self.temp_decay = temp_decay
        self.temperature = max_temp
        self.codevectors = nn.Parameter(
            torch.empty(1, num_groups * num_vars, codevector_dim // num_groups)
        )
        self.weight_proj = nn.Linear(input_dim, num_groups * num_vars)
        self.reset_parameters()

    @property
    def num_codevectors(self):
        """Total number of codewords ``G * V`` (for the diversity loss)."""
        return self.num_groups * self.num_vars

    def reset_parameters(self):
        """fairseq/HF initialisation: codewords U[0, 1), projection N(0, 1), zero bias."""
        nn.init.uniform_(self.codevectors)
        nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)

    def set_num_updates(self, num_updates):
        """Sets the temperature for optimizer update ``num_updates``."""
        self.temperature = max(
            self.max_temp * self.temp_decay**num_updates, self.min_temp
        )

    def group_logits(self, frames):
        """``[..., input_dim]`` -> ``[..., num_groups, num_vars]`` fp32 logits;
        their argmax is each group's code (what evaluation quantizes to)."""
        return self.weight_proj(frames.float()).view(*frames.shape[:-1], self.num_groups, self.num_vars)

    def forward(self, frames):
        """Quantizes every given frame.

        Arguments
        ---------
        frames : torch.Tensor
            ``[..., input_dim]``, e.g. ``[masked_frames, input_dim]`` (fairseq
            quantizes only the masked frames; statistics cover exactly the
            frames given).

        Returns
        -------
        codevectors : torch.Tensor
            ``[..., codevector_dim]`` in fp32.
        stats : dict
            ``prob_perplexity`` (differentiable, from the plain softmax),
            ``code_perplexity`` (detached, from the argmax assignments) and
            ``temperature`` (float).
        """
        leading = frames.shape[:-1]
        flat = frames.reshape(-1, frames.shape[-1])
        if flat.shape[0] == 0:
            raise ValueError("GumbelVectorQuantizer got no frames to quantize")
        groups, num_vars = self.num_groups, self.num_vars
        with torch.autocast(device_type=flat.device.type, enabled=False):
            logits = self.group_logits(flat)
            soft = torch.softmax(logits, dim=-1)
            prob_perplexity = perplexity(soft)
            hard = torch.nn.functional.one_hot(
                logits.argmax(dim=-1), num_vars
            ).to(logits.dtype)
            code_perplexity = perplexity(hard.detach()).detach()
            if self.training:
                weights = torch.nn.functional.gumbel_softmax(
                    logits, tau=self.temperature, hard=True, dim=-1
                )
            else:
                weights = hard
            codebook = self.codevectors.float().view(groups, num_vars, -1)
            codes = torch.einsum("ngv,gvd->ngd", weights, codebook)
        codes = codes.reshape(*leading, self.codevector_dim)
        stats = {
            "prob_perplexity": prob_perplexity,
            "code_perplexity": code_perplexity,
            "temperature": self.temperature,
        }
        return codes, stats
