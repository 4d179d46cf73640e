"""The train logger every recipe's YAML builds (``train_logger``).

Importing ``speechbrain.utils.train_logger`` logs "torchvision is not
available - cannot save figures" (its ``ProgressSampleLogger`` looks for an
image saver when the module is imported); no recipe here saves figures
through it and torchvision is no dependency, so that one record is dropped
(``FigureSaverFilter``, installed before the import) and every other record
of that logger kept.
"""
import logging

FIGURE_SAVER_LOGGER = "speechbrain.utils.train_logger"


class FigureSaverFilter(logging.Filter):
    """Drops SpeechBrain's "torchvision is not available" import-time warning.

    >>> record = logging.LogRecord(FIGURE_SAVER_LOGGER, logging.WARNING, "", 0,
    ...                            "torchvision is not available - cannot save figures", None, None)
    >>> FigureSaverFilter().filter(record)
    False
    >>> record.msg = "some other warning"
    >>> FigureSaverFilter().filter(record)
    True
    """

    def filter(self, record):
        return not str(record.msg).startswith("torchvision is not available")


def silence_figure_saver_warning():
    """Install ``FigureSaverFilter`` on SpeechBrain's train_logger logger
    (once); call it before ``speechbrain.utils.train_logger`` is imported."""
    target = logging.getLogger(FIGURE_SAVER_LOGGER)
    if not any(isinstance(f, FigureSaverFilter) for f in target.filters):
        target.addFilter(FigureSaverFilter())


silence_figure_saver_warning()

from speechbrain.utils.train_logger import FileTrainLogger  # noqa: E402 (after the filter)


class TrainLogger(FileTrainLogger):
    """SpeechBrain's ``FileTrainLogger`` that also writes every statistic to
    SpeechBrain's ``TensorboardLogger`` when ``use_tensorboard`` is set (the
    YAML key of every recipe; needs the ``tensorboard`` package).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> log = TrainLogger(folder / "log.txt", folder / "tb", use_tensorboard=False)
    >>> log.log_stats({"step": 1}, train_stats={"loss": 0.5})
    >>> (folder / "log.txt").read_text().strip()
    'step: 1 - train loss: 5.00e-01'
    """

    def __init__(self, save_file, tensorboard_dir=None, use_tensorboard=False, **kwargs):
        super().__init__(save_file, **kwargs)
        self.tensorboard = None
        if use_tensorboard:
            try:
                from speechbrain.utils.train_logger import TensorboardLogger

                self.tensorboard = TensorboardLogger(str(tensorboard_dir))
            except ImportError as err:
                raise ImportError("use_tensorboard: True needs the tensorboard package "
                                  "(pip install -r requirements.txt)") from err

    def log_stats(self, stats_meta, train_stats=None, valid_stats=None, test_stats=None,
                  verbose=False):
        super().log_stats(stats_meta, train_stats, valid_stats, test_stats, verbose)
        if self.tensorboard is not None:
            self.tensorboard.log_stats(stats_meta, train_stats, valid_stats, test_stats, verbose)
