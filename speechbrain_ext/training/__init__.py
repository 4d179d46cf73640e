"""What every recipe's training loop shares: the command line
(``recipe_cli``), batches sized in seconds (``batching``), reproducible random
streams (``random_streams``), LR schedules (``schedules``), safe checkpoints
and counters (``checkpointing``), the train logger (``train_logger``) and DDP
helpers (``distributed``)."""
