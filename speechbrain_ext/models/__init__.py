"""Backbone networks: wave feature extractors, transformer context networks,
and the models composed from them (wav2vec2; SEW / SEW-D)."""
