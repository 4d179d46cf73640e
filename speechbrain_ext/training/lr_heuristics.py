"""Learning-rate heuristics and batch-size settings of the batch-size study
(paper 001, Section 4.1 and Table 1).

The study scans three maximum learning rates per batch size of ``s`` seconds
of audio per update, all scaled from wav2vec 2.0's ``m_lr = 5e-4`` at a
reference batch of ``s_orig = 6000`` s (the paper rounds fairseq's ~5600 s up
so that ``h_lin`` gives round numbers):

- ``lin``:   ``h_lin(s)   = 5e-4 * s / 6000``
- ``sub``:   ``h_sub(s)   = 5e-4 * sqrt(s / 6000)``
- ``const``: ``h_const(s) = 5e-4``

The learning rate is the *maximum* of the cyclic schedule
(``speechbrain_ext.training.schedules.CyclicTriangular``: 8 cycles of 25k
updates up and 25k down, minimum = maximum / 100).

``TABLE1`` holds the paper's seven settings as data (GPUs x accumulation x
per-GPU sample budget, diversity weight, the heuristics tried and the one
that won); :func:`split_batch` checks that a user's own split of a batch
into GPUs x accumulation steps fits a per-GPU budget.

Example
-------
>>> f"{learning_rate('sub', 87.5):.2e}", f"{learning_rate('lin', 600):.2e}"
('6.04e-05', '5.00e-05')
>>> setting(300).gpus, setting(300).accumulation, setting(300).max_samples_per_gpu
(1, 2, 2400000)
>>> f"{setting('87.5s').learning_rate:.2e}", setting(87.5).diversity_weight
('6.04e-05', 0.05)
>>> split_batch(1200, gpus=2, accumulation=4, max_samples_per_gpu=2_400_000).samples_per_gpu_batch
2400000
"""
import math
from dataclasses import dataclass

# wav2vec 2.0 BASE's maximum learning rate and the reference batch (seconds)
REFERENCE_LR = 5e-4
REFERENCE_SECONDS = 6000.0
SAMPLE_RATE = 16000


def _linear(seconds):
    return REFERENCE_LR * seconds / REFERENCE_SECONDS


def _sub_linear(seconds):
    return REFERENCE_LR * math.sqrt(seconds / REFERENCE_SECONDS)


def _constant(seconds):
    return REFERENCE_LR


HEURISTICS = {"lin": _linear, "sub": _sub_linear, "const": _constant}
# the paper's subscripts, and spelled-out names, for YAML convenience
_ALIASES = {"h_lin": "lin", "linear": "lin", "h_sub": "sub", "sqrt": "sub",
            "square_root": "sub", "sub_linear": "sub", "sublinear": "sub",
            "h_const": "const", "constant": "const"}


def heuristic_names():
    """The known heuristic names (canonical first, then aliases).

    >>> heuristic_names()[:3]
    ['lin', 'sub', 'const']
    """
    return list(HEURISTICS) + list(_ALIASES)


def learning_rate(heuristic, seconds_per_update, reference_lr=REFERENCE_LR,
                  reference_seconds=REFERENCE_SECONDS):
    """Maximum learning rate of ``heuristic`` for a batch of
    ``seconds_per_update`` seconds of audio (a float), scaled from
    ``reference_lr`` at ``reference_seconds`` (the paper's 5e-4 at 6000 s; a
    smaller model or corpus has its own reference, e.g. the micro study's).

    Arguments
    ---------
    heuristic : str
        ``lin`` / ``sub`` / ``const`` (or ``h_lin``, ``linear``, ``sqrt``,
        ``h_const``, ... see :func:`heuristic_names`).
    seconds_per_update : float
        Seconds of audio in one optimizer update (all GPUs and accumulation
        steps together), > 0.
    reference_lr, reference_seconds : float
        ``m_lr`` and ``s_orig`` of the heuristics (> 0).

    Returns
    -------
    float

    Example
    -------
    >>> learning_rate("lin", 6000), learning_rate("const", 1.0)
    (0.0005, 0.0005)
    >>> learning_rate("sub", 10.0, reference_lr=1e-3, reference_seconds=40.0)
    0.0005
    >>> learning_rate("cosine", 150)
    Traceback (most recent call last):
    ...
    ValueError: unknown learning-rate heuristic 'cosine' (the YAML key lr_heuristic); known: lin, sub, const (aliases: h_lin, linear, h_sub, sqrt, square_root, sub_linear, sublinear, h_const, constant)
    """
    key = str(heuristic).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in HEURISTICS:
        raise ValueError(f"unknown learning-rate heuristic {heuristic!r} (the YAML key lr_heuristic); known: "
                         f"{', '.join(HEURISTICS)} (aliases: {', '.join(_ALIASES)})")
    seconds = float(seconds_per_update)
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"seconds_per_update must be a positive finite number, got {seconds_per_update!r}")
    reference_lr, reference_seconds = float(reference_lr), float(reference_seconds)
    if not (reference_lr > 0 and reference_seconds > 0):
        raise ValueError(f"reference_lr and reference_seconds must be > 0, got {reference_lr!r}, "
                         f"{reference_seconds!r}")
    return reference_lr / REFERENCE_LR * HEURISTICS[key](seconds * REFERENCE_SECONDS / reference_seconds)


@dataclass(frozen=True)
class BatchSizeSetting:
    """One row of paper 001's Table 1.

    ``max_samples_per_gpu``: the per-GPU-batch budget in 16 kHz samples (the
    sampler's ``max_samples``); ``tried``: the heuristics the paper ran for
    this batch size (80 min: only ``const``); ``best``: the one with the
    lowest validation loss (bold in Table 1); ``runtime``: as printed.
    """

    seconds: float
    gpus: int
    accumulation: int
    max_samples_per_gpu: int
    diversity_weight: float
    tried: tuple
    best: str
    runtime: str

    @property
    def minutes(self):
        return self.seconds / 60.0

    @property
    def label(self):
        """``87.5s``, ``150s``, ``5min`` ... ``80min`` (the paper's names)."""
        return f"{self.seconds:g}s" if self.seconds < 300 else f"{self.minutes:g}min"

    @property
    def gpu_batches_per_update(self):
        return self.gpus * self.accumulation

    @property
    def learning_rate(self):
        """The winning maximum learning rate."""
        return learning_rate(self.best, self.seconds)

    def learning_rates(self):
        """``{heuristic: max lr}`` of the heuristics the paper tried."""
        return {name: learning_rate(name, self.seconds) for name in self.tried}

    def split(self):
        """This row's split, checked (see :func:`split_batch`)."""
        return split_batch(self.seconds, self.gpus, self.accumulation, self.max_samples_per_gpu,
                           exact=True)


_ALL = ("const", "sub", "lin")
# Table 1: GPUs and accumulation as printed; 2.4 M samples (150 s) per GPU
# batch except the smallest setting, which is one GPU batch of 1.4 M samples
# (fairseq's per-GPU size); lambda_d = 1/20 only at 87.5 s (Section 4.1).
TABLE1 = (
    BatchSizeSetting(87.5, 1, 1, 1_400_000, 1 / 20, _ALL, "sub", "1d 13h"),
    BatchSizeSetting(150.0, 1, 1, 2_400_000, 1 / 10, _ALL, "sub", "2d 4h"),
    BatchSizeSetting(300.0, 1, 2, 2_400_000, 1 / 10, _ALL, "sub", "3d 22h"),
    BatchSizeSetting(600.0, 4, 1, 2_400_000, 1 / 10, _ALL, "sub", "2d 14h"),
    BatchSizeSetting(1200.0, 2, 4, 2_400_000, 1 / 10, _ALL, "sub", "7d 20h"),
    BatchSizeSetting(2400.0, 4, 4, 2_400_000, 1 / 10, _ALL, "const", "7d 18h"),
    BatchSizeSetting(4800.0, 8, 4, 2_400_000, 1 / 10, ("const",), "const", "7d 19h"),
)


def setting(key):
    """The Table 1 row for ``key``: seconds per update (``87.5``, ``300``)
    or a label (``"87.5s"``, ``"150s"``, ``"5min"``, ``"80min"``).

    >>> setting("80min").gpus * setting("80min").accumulation
    32
    """
    for row in TABLE1:
        if isinstance(key, str) and key.strip().lower() == row.label.lower():
            return row
        if not isinstance(key, str) and math.isclose(float(key), row.seconds):
            return row
    raise ValueError(f"no Table 1 setting {key!r}; known: {', '.join(r.label for r in TABLE1)} "
                     f"({', '.join(f'{r.seconds:g}' for r in TABLE1)} s)")


@dataclass(frozen=True)
class BatchSplit:
    """A checked split: ``gpus`` x ``accumulation`` GPU batches of
    ``samples_per_gpu_batch`` samples each make one update."""

    gpus: int
    accumulation: int
    samples_per_gpu_batch: int
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds_per_gpu_batch(self):
        return self.samples_per_gpu_batch / self.sample_rate

    @property
    def seconds_per_update(self):
        return self.seconds_per_gpu_batch * self.gpus * self.accumulation


def split_batch(seconds_per_update, gpus, accumulation, max_samples_per_gpu,
                sample_rate=SAMPLE_RATE, exact=False):
    """Checks that ``seconds_per_update`` of audio splits into ``gpus`` x
    ``accumulation`` GPU batches that each fit ``max_samples_per_gpu``.

    The update must be a whole number of samples that divides evenly over
    the ``gpus * accumulation`` GPU batches, and each GPU batch must fit the
    budget (``exact=True``: fill it exactly, as every row of Table 1 does).
    A split that fails raises a ``ValueError`` saying why and, where one
    exists, the smallest accumulation that would work.

    Arguments
    ---------
    seconds_per_update : float
        Audio per optimizer update (all GPUs, all accumulation steps).
    gpus, accumulation : int
        Data-parallel processes, gradient-accumulation steps per update.
    max_samples_per_gpu : int
        Per-GPU-batch budget in samples (2.4 M on a 24 GB GPU in the paper).
    sample_rate : int
    exact : bool

    Returns
    -------
    BatchSplit

    Example
    -------
    >>> split_batch(300, 1, 2, 2_400_000).seconds_per_gpu_batch
    150.0
    >>> split_batch(300, 1, 1, 2_400_000)
    Traceback (most recent call last):
    ...
    ValueError: 300 s per update on 1 GPU(s) x 1 accumulation step(s) is 4800000 samples per GPU batch, over the budget of 2400000 samples (150 s); accumulation 2 would fit
    """
    for name, value in (("gpus", gpus), ("accumulation", accumulation)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    gpus, accumulation = int(gpus), int(accumulation)
    if int(max_samples_per_gpu) != max_samples_per_gpu or max_samples_per_gpu < 1:
        raise ValueError(f"max_samples_per_gpu must be a positive integer, got {max_samples_per_gpu!r}")
    max_samples_per_gpu = int(max_samples_per_gpu)
    exact_total = float(seconds_per_update) * sample_rate
    total = round(exact_total)
    if total < 1 or abs(exact_total - total) > 1e-6 * max(1.0, exact_total):
        raise ValueError(f"{seconds_per_update!r} s per update is not a whole number of samples at "
                         f"{sample_rate} Hz ({exact_total!r})")
    parts = gpus * accumulation
    where = f"{seconds_per_update:g} s per update on {gpus} GPU(s) x {accumulation} accumulation step(s)"
    if total % parts:
        raise ValueError(f"{where}: {total} samples do not divide into {parts} equal GPU batches "
                         f"({total / parts:.2f} samples each)")
    per_batch = total // parts

    def _suggestion():
        for acc in range(1, 1025):
            if total % (gpus * acc) == 0 and (total // (gpus * acc) == max_samples_per_gpu
                                              if exact else total // (gpus * acc) <= max_samples_per_gpu):
                return f"; accumulation {acc} would fit"
        return ""

    budget = f"the budget of {max_samples_per_gpu} samples ({max_samples_per_gpu / sample_rate:g} s)"
    if per_batch > max_samples_per_gpu:
        raise ValueError(f"{where} is {per_batch} samples per GPU batch, over {budget}{_suggestion()}")
    if exact and per_batch != max_samples_per_gpu:
        raise ValueError(f"{where} is {per_batch} samples per GPU batch, not exactly {budget}"
                         f"{_suggestion()}")
    return BatchSplit(gpus, accumulation, per_batch, sample_rate)
