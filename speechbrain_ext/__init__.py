"""Shared lobes for efficient self-supervised speech pre-training recipes
(models, objectives, masking, schedules, analysis).

``load_backbone(PATH)`` is the one entry point for downstream use.
"""

__version__ = "0.1.0"


def load_backbone(path):
    """See ``speechbrain_ext.backbone.load_backbone``."""
    from .backbone import load_backbone as _load

    return _load(path)
