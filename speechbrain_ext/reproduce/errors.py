"""The error of a cell whose value cannot be read or measured (shared by
``metrics`` and ``timing``, which ``metrics`` dispatches to)."""


class MetricError(RuntimeError):
    """A step's output that does not hold the cell's value, or a value this
    machine cannot measure."""
