"""Shared lobes for efficient self-supervised speech pre-training recipes.

Layers, each importing only from those before it (``tests/test_layering.py``):
``io`` (manifests, pieces, checkpoint files) <- ``models`` (backbones) <-
``interop`` (HF / fairseq, ``load_backbone``) <- ``pretraining`` (the
objectives) <- ``training`` (what every recipe's loop shares) <-
``downstream`` (SUPERB tasks, CTC fine-tuning, decoding) <- ``analysis``.
``speechbrain_ext/README.md`` says where each paper's contribution lives.

``load_backbone(PATH)`` is the one entry point for downstream use.
"""

__version__ = "0.1.0"


def load_backbone(path):
    """See ``speechbrain_ext.interop.loading.load_backbone``."""
    from speechbrain_ext.interop.loading import load_backbone as _load

    return _load(path)
