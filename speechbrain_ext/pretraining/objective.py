"""The interface the pre-training recipe relies on: any module with these
members pre-trains with ``recipes/pretrain/train.py`` (the YAML's ``model``).

>>> from speechbrain_ext.pretraining.noncontrastive import NonContrastiveModel
>>> model = NonContrastiveModel({"zoo": "w2v2_micro"})
>>> isinstance(model, PretrainingObjective), model.monitor_key
(True, 'unrolled_plus_merged')
"""
from typing import Protocol, runtime_checkable


@runtime_checkable
class PretrainingObjective(Protocol):
    """A pre-training method wrapped around one backbone.

    - ``forward(wav, wav_lens)``: ``wav`` ``[batch, samples]``, ``wav_lens``
      ``[batch]`` relative or None -> dict holding the scalar ``loss`` to
      minimise, any other scalar terms to log, and ``time_mask``
      ``[batch, frames]`` (the span mask drawn; the recipe compares it
      across processes);
    - ``backbone``: the network kept for downstream use (saved with every
      checkpoint);
    - ``monitor_key``: the output that compares validation runs (``loss``,
      or a term that moves where the loss is constant);
    - ``min_frames()``: the shortest utterance (frames) the masking accepts;
    - ``set_num_updates(n)``: state that depends on the update count (Gumbel
      temperature), also set on resume;
    - ``after_optimizer_step(n)``: called after every update (EMA target).
    """

    monitor_key: str

    @property
    def backbone(self): ...

    def min_frames(self) -> int: ...

    def set_num_updates(self, num_updates: int) -> None: ...

    def after_optimizer_step(self, num_updates: int) -> None: ...

    def __call__(self, wav, wav_lens=None): ...
