"""Shared fixtures: the synthetic corpora every test reads.

``mini_corpus`` is the default-size corpus set, generated once into
``$SB_EXT_DATA`` (``make test`` passes ``data/mini``, shared with
``make demo``) and reused while it is complete with the same options.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mini_root():
    root = Path(os.environ.get("SB_EXT_DATA", REPO_ROOT / "data" / "mini"))
    if not root.is_absolute():
        root = REPO_ROOT / root
    return root


@pytest.fixture(scope="session")
def mini_corpus(mini_root):
    """Generate (or reuse) every mini corpus; returns ``(root, stats)``.
    ``SB_EXT_CORPORA=librispeech,librilight`` restricts it (a quick local run)."""
    from data_prep.synthetic import generate

    only = os.environ.get("SB_EXT_CORPORA")
    corpora = only.split(",") if only else None
    stats = generate(mini_root, seed=0, size="mini", corpora=corpora, log=lambda *a: None)
    return mini_root, stats


def load_recipe_script(path, name):
    """Import a recipe's ``train.py`` under a unique module ``name``: every
    recipe's script is called ``train``, so a plain ``import train`` would
    return whichever recipe another test imported first."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
