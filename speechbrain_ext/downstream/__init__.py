"""Downstream (SUPERB-style) evaluation of pre-trained backbones: the shared
upstream (frozen weighted sum or fine-tuned), the ``DownstreamBrain`` every
task recipe subclasses, metrics, the results file and paper 003's table.
The CTC tasks (ASR, PR, SF, ASR-zh): ``vocabulary``, ``ctc_head``,
``ctc_brain``, ``decoding.greedy`` and the driver ``ctc.run_ctc_task``.
Recipes: ``recipes/downstream/<task>/train.py``."""
import importlib

# name -> submodule; imported on first use, so that `python -m
# speechbrain_ext.downstream.results` does not import results twice (brain
# imports it), which runpy warns about
_EXPORTS = {"ClassificationBrain": "brain", "DownstreamBrain": "brain", "MeanPool": "brain",
            "MeanPoolClassifier": "brain", "XvectorClassifier": "brain", "masked_mean": "brain",
            "Upstream": "upstream", "WeightedLayerSum": "upstream"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
