"""The self-supervised objectives, one module per method: ``wav2vec2``
(contrastive; its ``quantizer``, negatives and loss in ``contrastive``,
projection ``heads``) and ``noncontrastive`` (paper 000; its Barlow-Twins
losses in ``barlow``, the EMA target in ``ema``). Both follow
``objective.PretrainingObjective``. Span masking belongs to the backbones
(``speechbrain_ext.models.masking``)."""
