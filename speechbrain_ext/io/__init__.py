"""Bottom layer: what every other layer reads and writes on disk: manifests
and length-split pieces (``data``), the checkpoint-folder rule
(``checkpoints``). Imports nothing else from the package."""
