"""Pre-training objectives: the wav2vec 2.0 contrastive task
(:mod:`.contrastive`) and the non-contrastive Barlow-Twins losses of
time unrolling and time merging (:mod:`.barlow`)."""
