"""Shared lobes for efficient self-supervised speech pre-training recipes
(models, objectives, masking, schedules, analysis)."""

__version__ = "0.1.0"
