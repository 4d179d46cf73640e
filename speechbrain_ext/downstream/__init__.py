"""Downstream (SUPERB-style) evaluation of pre-trained backbones: the shared
upstream (frozen weighted sum or fine-tuned), the ``DownstreamBrain`` every
task recipe subclasses, metrics, the results file and paper 003's table.
The CTC tasks (ASR, PR, SF, ASR-zh): ``vocabulary``, ``ctc_head``,
``ctc_brain``, ``decoding.greedy`` and the driver ``ctc.run_ctc_task``.
Recipes: ``recipes/downstream/<task>/train.py``."""
from speechbrain_ext.downstream.brain import (ClassificationBrain, DownstreamBrain, MeanPool,
                                              MeanPoolClassifier, XvectorClassifier, masked_mean)
from speechbrain_ext.downstream.upstream import Upstream, WeightedLayerSum

__all__ = ["ClassificationBrain", "DownstreamBrain", "MeanPool", "MeanPoolClassifier", "Upstream",
           "WeightedLayerSum", "XvectorClassifier", "masked_mean"]
