"""What every recipe's training loop shares: the command line
(``recipe_cli``), batches sized in seconds (``batching``; paper 001's
bucketed batching in ``paper001_batching``), reproducible random streams
(``random_streams``), LR schedules (``schedules``) and paper 001's LR
heuristics (``lr_heuristics``), safe checkpoints and counters
(``checkpointing``), the train logger (``train_logger``) and DDP helpers
(``distributed``)."""
