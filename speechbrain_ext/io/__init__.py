"""Bottom layer: what every other layer reads and writes on disk: manifests
and length-split pieces (``data``), the checkpoint-folder rule
(``checkpoints``), frame-level phone alignments in the layout of CPC's public
LibriSpeech labels (``alignments``). Imports nothing else from the package."""
