"""Learning-rate schedules as pure functions of the optimizer update count.

Each schedule is a small callable ``schedule(step) -> lr``; the recipe sets the
optimizer's learning rate from it after every update, so resuming needs only
the update count (which SpeechBrain's checkpoint keeps), not scheduler state.

- ``LinearWarmupDecay``: fairseq's wav2vec2 ``polynomial_decay`` with power 1
  (linear warm-up to ``peak_lr`` over ``warmup_steps``, then linear decay to
  ``end_lr`` at ``total_steps``).
- ``ExponentialDecay``: paper 000's ``lr * decay_rate ** (step / decay_steps)``.
- ``TriStage``: fairseq's tri-stage schedule for fine-tuning (warm-up, hold,
  exponential decay to ``final_lr_scale``).
- ``CyclicTriangular``: the batch-size paper's triangular cycles.

:func:`make_schedule` builds any of them from a name, so that a YAML picks
its schedule by a plain key (``lr_schedule_kind: cyclic``) which an
overrides file or the command line can change (they cannot install an
object).

Example
-------
>>> s = LinearWarmupDecay(peak_lr=5e-4, warmup_steps=10, total_steps=110)
>>> s(0), s(5), s(10), s(60), s(110)
(0.0, 0.00025, 0.0005, 0.00025, 0.0)
>>> ExponentialDecay(1e-5, decay_rate=0.99, decay_steps=1000)(2000) == 1e-5 * 0.99 ** 2
True
"""
import math


class LinearWarmupDecay:
    """Linear warm-up from 0 to ``peak_lr``, linear decay to ``end_lr``."""

    def __init__(self, peak_lr, warmup_steps, total_steps, end_lr=0.0):
        if total_steps <= warmup_steps:
            raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        self.peak_lr, self.warmup_steps, self.total_steps, self.end_lr = (
            peak_lr, warmup_steps, total_steps, end_lr)

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.peak_lr * step / self.warmup_steps
        frac = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.peak_lr + (self.end_lr - self.peak_lr) * frac


class ExponentialDecay:
    """``lr * decay_rate ** (step / decay_steps)`` (continuous, TF style)."""

    def __init__(self, lr, decay_rate=0.99, decay_steps=1000):
        self.lr, self.decay_rate, self.decay_steps = lr, decay_rate, decay_steps

    def __call__(self, step):
        return self.lr * self.decay_rate ** (step / self.decay_steps)


class TriStage:
    """Warm-up (linear from ``init_lr_scale * peak``), hold, exponential
    decay to ``final_lr_scale * peak``; phases as fractions of ``total_steps``
    (fairseq's 10 / 40 / 50 %).

    >>> s = TriStage(1.0, total_steps=100, phase_ratio=(0.1, 0.4, 0.5))
    >>> round(s(10), 6), round(s(50), 6), round(s(100), 6)
    (1.0, 1.0, 0.05)
    """

    def __init__(self, peak_lr, total_steps, phase_ratio=(0.1, 0.4, 0.5),
                 init_lr_scale=0.01, final_lr_scale=0.05):
        if abs(sum(phase_ratio) - 1.0) > 1e-6:
            raise ValueError(f"phase_ratio must sum to 1, got {phase_ratio}")
        self.peak_lr = peak_lr
        self.warmup = int(phase_ratio[0] * total_steps)
        self.hold = int(phase_ratio[1] * total_steps)
        self.decay = total_steps - self.warmup - self.hold
        self.init_lr = init_lr_scale * peak_lr
        self.final_scale = final_lr_scale

    def __call__(self, step):
        if step < self.warmup:
            return self.init_lr + (self.peak_lr - self.init_lr) * step / max(1, self.warmup)
        step -= self.warmup
        if step < self.hold:
            return self.peak_lr
        step = min(step - self.hold, self.decay)
        return self.peak_lr * math.exp(math.log(self.final_scale) * step / max(1, self.decay))


class CyclicTriangular:
    """Triangular cycles between ``base_lr`` and ``max_lr``, ``step_size``
    updates up and ``step_size`` down (batch-size paper: base = max / 100).

    >>> s = CyclicTriangular(max_lr=1.0, base_lr=0.0, step_size=10)
    >>> s(0), s(5), s(10), s(15), s(20)
    (0.0, 0.5, 1.0, 0.5, 0.0)
    """

    def __init__(self, max_lr, base_lr=None, step_size=25000):
        self.max_lr = max_lr
        self.base_lr = max_lr / 100 if base_lr is None else base_lr
        self.step_size = step_size

    def __call__(self, step):
        position = step % (2 * self.step_size)
        frac = position / self.step_size if position <= self.step_size else 2 - position / self.step_size
        return self.base_lr + (self.max_lr - self.base_lr) * frac


SCHEDULES = {"linear": LinearWarmupDecay, "exponential": ExponentialDecay, "tri_stage": TriStage,
             "cyclic": CyclicTriangular}


def make_schedule(kind, peak_lr, total_steps=None, warmup_steps=None, cycles=8,
                  base_lr_ratio=0.01, decay_rate=0.99, decay_steps=1000):
    """The schedule called ``kind``, from the keys every YAML has.

    - ``cyclic`` (paper 001, Section 4.1): ``cycles`` triangular cycles over
      ``total_steps`` (400k / 8 = 25k up and 25k down), minimum
      ``base_lr_ratio * peak_lr`` (1/100);
    - ``linear``: warm-up over ``warmup_steps``, linear decay to 0 at
      ``total_steps`` (fairseq's wav2vec2 pre-training);
    - ``tri_stage``: fairseq's 10 / 40 / 50 % over ``total_steps``;
    - ``exponential``: ``peak_lr * decay_rate ** (step / decay_steps)``.

    Arguments
    ---------
    kind : str
    peak_lr : float
        The maximum learning rate (``lr`` of the YAML).
    total_steps : int
    warmup_steps : int
    cycles : int
    base_lr_ratio : float
    decay_rate, decay_steps : float, int

    Returns
    -------
    callable ``step -> lr``

    Example
    -------
    >>> s = make_schedule("cyclic", 1.0, total_steps=160, cycles=8)
    >>> s.step_size, s(0), s(10), s(20)
    (10, 0.01, 1.0, 0.01)
    >>> make_schedule("cosine", 1.0, 100)
    Traceback (most recent call last):
    ...
    ValueError: lr_schedule_kind 'cosine' is not a schedule; expected one of: linear, exponential, tri_stage, cyclic
    """
    if kind not in SCHEDULES:
        raise ValueError(f"lr_schedule_kind {kind!r} is not a schedule; expected one of: "
                         f"{', '.join(SCHEDULES)}")
    if kind == "exponential":
        return ExponentialDecay(peak_lr, decay_rate, decay_steps)
    if total_steps is None or int(total_steps) < 1:
        raise ValueError(f"lr_schedule_kind {kind!r} needs total_steps >= 1, got {total_steps!r}")
    total_steps = int(total_steps)
    if kind == "linear":
        return LinearWarmupDecay(peak_lr, int(warmup_steps or 0), total_steps)
    if kind == "tri_stage":
        return TriStage(peak_lr, total_steps)
    if int(cycles) < 1 or total_steps < 2 * int(cycles):
        raise ValueError(f"cyclic schedule: {total_steps} updates cannot hold {cycles} cycles "
                         "(each needs at least one update up and one down)")
    # an exact number of cycles: the paper compares checkpoints at their ends
    return CyclicTriangular(peak_lr, base_lr_ratio * peak_lr, total_steps // (2 * int(cycles)))


def set_learning_rate(optimizer, lr):
    """Set ``lr`` on every parameter group of ``optimizer``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
