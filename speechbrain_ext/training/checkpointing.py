"""What a training run checkpoints besides SpeechBrain's own recoverables:
the audio seen (``AudioCounter``), the backbone in our loadable format
(``BackboneSaver``), and ``SafeCheckpointer``: SpeechBrain's Checkpointer
safe against kills, full disks and damaged files.

Example
-------
>>> import tempfile, torch
>>> folder = tempfile.mkdtemp()
>>> counter, layer = AudioCounter(), torch.nn.Linear(2, 2)
>>> counter.add(7200.0)
>>> checkpointer = SafeCheckpointer(folder, recoverables={"counter": counter, "layer": layer})
>>> _ = checkpointer.save_checkpoint()
>>> fresh = AudioCounter()
>>> _ = SafeCheckpointer(folder, recoverables={"counter": fresh, "layer": layer}).recover_if_possible()
>>> fresh.hours
2.0
"""
import logging
import shutil
import time
from pathlib import Path

import torch
from speechbrain.dataio.dataloader import SaveableDataLoader
from speechbrain.utils.checkpoints import (DEFAULT_LOAD_HOOKS, Checkpointer, get_default_hook,
                                           mark_as_loader, mark_as_saver, register_checkpoint_hooks)
from speechbrain.utils.distributed import if_main_process, is_distributed_initialized, main_process_only

from speechbrain_ext.io import checkpoints
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.training.distributed import world_size

logger = logging.getLogger(__name__)


@register_checkpoint_hooks
class AudioCounter:
    """Seconds of audio consumed by training (all processes), checkpointed so
    that "hours seen" survives a resume."""

    def __init__(self):
        self.seconds = 0.0

    def add(self, seconds):
        """Add ``seconds`` consumed by all processes (``sum_over_processes``)."""
        self.seconds += float(seconds)

    @property
    def hours(self):
        return self.seconds / 3600

    @mark_as_saver
    def _save(self, path):
        Path(path).write_text(repr(self.seconds))

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        self.seconds = float(Path(path).read_text())


@register_checkpoint_hooks
class BackboneSaver:
    """Writes the backbone (``speechbrain_ext.load_backbone`` format) into
    every checkpoint as ``<key>.ckpt``, with what the run had done by then
    as the file's metadata (``speechbrain_ext.interop.loading.backbone_metadata``
    reads it): ``hours_seen`` (of ``audio_counter``, an ``AudioCounter``) and
    ``updates`` (``get_updates()``) and the device hours of ``get_device_hours()``
    (``{"gpu_hours": ...}`` or ``{"cpu_hours": ...}``), each when given.
    Loading is done by the model's own recoverable, so this one only saves.

    >>> import tempfile
    >>> from speechbrain_ext.models.registry import build_backbone, read_backbone_metadata
    >>> counter = AudioCounter(); counter.add(5400.0)
    >>> saver = BackboneSaver(lambda: build_backbone({"zoo": "w2v2_micro"}), counter, lambda: 30)
    >>> path = tempfile.mkdtemp() + "/backbone.ckpt"
    >>> saver._save(path)
    >>> read_backbone_metadata(path)
    {'hours_seen': 1.5, 'updates': 30}
    """

    def __init__(self, get_backbone, audio_counter=None, get_updates=None, get_device_hours=None):
        self.get_backbone = get_backbone
        self.audio_counter = audio_counter
        self.get_updates = get_updates
        self.get_device_hours = get_device_hours

    def metadata(self):
        """What is stored with the backbone now."""
        metadata = {}
        if self.audio_counter is not None:
            metadata["hours_seen"] = float(self.audio_counter.hours)
        if self.get_updates is not None:
            metadata["updates"] = int(self.get_updates())
        if self.get_device_hours is not None:
            metadata.update({k: float(v) for k, v in self.get_device_hours().items()})
        return metadata

    @mark_as_saver
    def _save(self, path):
        save_backbone(self.get_backbone(), path, metadata=self.metadata())

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        pass


class SafeCheckpointer(Checkpointer):
    """SpeechBrain's Checkpointer, safe against a kill, a full disk or a
    damaged file.

    - A checkpoint counts only once a ``COMPLETE`` marker is written after
      all its files (SpeechBrain writes the meta file first, so a folder left
      by a kill mid-save looks complete to it); unmarked folders are ignored,
      and removed when the run recovers (the rule: ``speechbrain_ext.io.checkpoints``).
    - A failing save (e.g. ``OSError(ENOSPC)`` from a saver) is a
      ``CheckpointError`` naming the folder and the cause; the partial folder
      is removed and the previous checkpoints are left as they were (raised
      before ``save_and_keep_only`` deletes any). A save under an existing
      custom ``name`` keeps the old folder (as ``replaced-CKPT+name``) until
      the new one is complete.
    - ``recover_if_possible`` skips a damaged checkpoint (a truncated or
      corrupt file of any recoverable, an unreadable ``CKPT.yaml``): it warns
      naming the folder, the file and the error, moves the folder aside as
      ``damaged-CKPT+...`` and loads the next one. When every complete
      checkpoint is damaged it raises a ``CheckpointError`` (see there).
    """

    MARKER = checkpoints.MARKER
    LOADED, DAMAGED, FAILED = 0, 1, 2  # outcomes of a load, worst last

    # -- saving ----------------------------------------------------------

    # SpeechBrain picks the folder inside save_checkpoint (main process only);
    # remember it so that a failed save can name and remove it
    def _new_checkpoint_dirpath(self):
        self._writing = super()._new_checkpoint_dirpath()
        return self._writing

    def _custom_checkpoint_dirpath(self, name):
        folder = super()._custom_checkpoint_dirpath(name)
        if folder.exists():  # SpeechBrain would overwrite it in place
            replaced = folder.with_name(checkpoints.REPLACED_PREFIX + folder.name)
            shutil.rmtree(replaced, ignore_errors=True)  # a stale copy of an older save
            folder.rename(replaced)
            self._replaced = replaced
        self._writing = folder  # only once the old one is safe: a failure removes it
        return folder

    def save_checkpoint(self, *args, **kwargs):
        """SpeechBrain's ``save_checkpoint``, then the ``COMPLETE`` marker.
        Raises ``CheckpointError`` (naming the folder and the cause) when any
        part of the save fails; see the class docstring."""
        self._writing = self._replaced = None
        try:
            checkpoint = super().save_checkpoint(*args, **kwargs)
            if checkpoint is not None and if_main_process():
                (Path(checkpoint.path) / self.MARKER).write_text("")
        except Exception as err:
            raise self._save_failed(err) from err
        if self._replaced is not None:
            shutil.rmtree(self._replaced, ignore_errors=True)
        return checkpoint

    def _save_failed(self, err):
        folder, replaced = self._writing, self._replaced
        if folder is not None:  # set on the main process only, which made the folder
            shutil.rmtree(folder, ignore_errors=True)
            if replaced is not None and not folder.exists():
                replaced.rename(folder)
        where = folder if folder is not None else f"a new checkpoint in {self.checkpoints_dir}"
        return CheckpointError(
            f"saving checkpoint {where} failed ({type(err).__name__}: {err}); the partial "
            f"folder was removed, the previous checkpoints in {self.checkpoints_dir} are intact")

    # -- listing ---------------------------------------------------------

    def list_checkpoints(self):
        """The complete checkpoints (SpeechBrain ``Checkpoint`` tuples); one
        whose ``CKPT.yaml`` cannot be read is left out with a warning."""
        found = []
        for folder in checkpoints.complete_checkpoints(self.checkpoints_dir):
            try:
                checkpoints.read_meta(folder)
            except ValueError as err:
                logger.warning(f"ignoring checkpoint {folder}: {err}")
                continue
            found.extend(self._construct_checkpoint_objects([folder]))
        return found

    # -- recovering ------------------------------------------------------

    def recover_if_possible(self, importance_key=None, max_key=None, min_key=None,
                            ckpt_predicate=None):
        """Load the checkpoint SpeechBrain's ``recover_if_possible`` would
        pick (same keys), skipping damaged ones; returns the loaded
        ``Checkpoint``, or None when there is no complete checkpoint.

        Before choosing, the main process removes incomplete folders and moves
        aside those with an unreadable ``CKPT.yaml``. A checkpoint whose
        loading fails on a file that is damaged (empty, truncated, a CRC
        mismatch, or a non-torch file its loader rejects) is moved aside with
        a warning and the next one is tried. Every process loads the same
        checkpoint: they agree on each outcome, only the main process renames.

        Raises ``CheckpointError``
        - when a file is intact but does not load (a changed model or
          config, a recoverable without its file): moving checkpoints aside
          would silently restart the run, so nothing is moved;
        - when every complete checkpoint turned out damaged (all moved
          aside): the failed loads may have filled some recoverables (epoch
          counter, ...) already, so going on would train from a mix; a
          rerun starts cleanly from scratch.
        """
        self._tidy()
        skipped = []
        while True:
            def predicate(ckpt, skipped=tuple(skipped)):
                return ckpt.path not in skipped and (ckpt_predicate is None or ckpt_predicate(ckpt))

            chosen = self.find_checkpoint(importance_key, max_key, min_key, predicate)
            if chosen is None:
                break
            if skipped:
                self._forget_loader_positions()
            failure = self._load_naming_file(chosen)
            damage = self._damage(failure)
            outcome = self._worst_over_processes(
                self.LOADED if failure is None else self.DAMAGED if damage else self.FAILED)
            if outcome == self.LOADED:
                return chosen
            if outcome == self.FAILED:
                if failure is None:
                    raise CheckpointError(f"loading checkpoint {chosen.path} failed on another process")
                file, err = failure
                what = f"loading {file} failed" if file is not None else "loading failed"
                raise CheckpointError(
                    f"checkpoint {chosen.path}: {what} ({type(err).__name__}: {err}), although "
                    f"the file is intact: has the model, config or list of recoverables changed? "
                    f"(nothing was moved)") from err
            moved = self._move_aside(chosen.path)
            if moved.startswith("error:"):
                raise CheckpointError(f"checkpoint {chosen.path} is damaged and cannot be moved "
                                      f"aside: {moved[len('error: '):]}")
            if failure is not None:
                file, err = failure
                logger.warning(
                    f"checkpoint {chosen.path} is damaged: loading {file} failed "
                    f"({type(err).__name__}: {err}; {damage}); moved it to {moved}, "
                    f"trying the next checkpoint")
            else:
                logger.warning(f"checkpoint {chosen.path} failed to load on another process; "
                               f"moved it to {moved}, trying the next checkpoint")
            skipped.append(chosen.path)
        if skipped:
            raise CheckpointError(
                f"no checkpoint in {self.checkpoints_dir} could be loaded: all {len(skipped)} "
                f"complete ones are damaged and were renamed {checkpoints.DAMAGED_PREFIX}CKPT+...; "
                f"rerun to start from scratch, or rename one back after repairing it")
        # "a new run", not "from scratch": the recipe then says where it starts
        # (random init, or the --init_from / --pretrained weights)
        logger.info(f"no complete checkpoint in {self.checkpoints_dir} yet: a new run")
        return None

    @main_process_only
    def _tidy(self):
        # errors are logged, not raised: a raise here would leave the other
        # processes waiting in main_process_only's broadcast
        replacing = checkpoints.REPLACED_PREFIX + checkpoints.PREFIX
        for replaced in Path(self.checkpoints_dir).glob(replacing + "*"):
            target = replaced.with_name(replaced.name[len(checkpoints.REPLACED_PREFIX):])
            try:  # a kill during a same-name save: keep the complete one of the two
                if checkpoints.is_complete(target):
                    shutil.rmtree(replaced)
                else:
                    shutil.rmtree(target, ignore_errors=True)
                    replaced.rename(target)
                    logger.warning(f"restored {target}: its replacement was interrupted")
            except OSError as err:
                logger.warning(f"cannot tidy {replaced}: {err}")
        for folder in Path(self.checkpoints_dir).glob(checkpoints.PREFIX + "*"):
            if not folder.is_dir():
                continue
            try:
                if not checkpoints.is_complete(folder):
                    logger.warning(f"removing incomplete checkpoint {folder} (interrupted save)")
                    shutil.rmtree(folder)
                    continue
                try:
                    checkpoints.read_meta(folder)
                except ValueError as err:
                    moved = checkpoints.move_aside(folder)
                    logger.warning(f"checkpoint {folder} is damaged ({err}); moved it to {moved}")
            except OSError as err:  # left in place: list_checkpoints skips it with a warning
                logger.warning(f"cannot tidy {folder}: {err}")

    @main_process_only
    def _move_aside(self, folder):
        try:
            return str(checkpoints.move_aside(folder))
        except OSError as err:  # returned, not raised: see _tidy
            return f"error: {err}"

    def _load_naming_file(self, checkpoint):
        """``load_checkpoint``; None when it loads, else ``(file, error)``
        with the file whose load hook failed (None when the failure was not
        in a hook, e.g. SpeechBrain's "missing a load path")."""
        current = {}

        def tracked(hook):
            def load(obj, path, end_of_epoch):
                current["file"] = Path(path)
                hook(obj, path, end_of_epoch)
                del current["file"]
            return load

        # the custom hooks take precedence in SpeechBrain's loop: wrap every
        # recoverable's hook there for the duration of this load
        original = self.custom_load_hooks
        hooks = {name: original.get(name) or get_default_hook(obj, DEFAULT_LOAD_HOOKS)
                 for name, obj in self.recoverables.items()}
        self.custom_load_hooks = {name: tracked(hook) for name, hook in hooks.items()
                                  if hook is not None}
        try:
            self.load_checkpoint(checkpoint)
        except Exception as err:
            return current.get("file"), err
        finally:
            self.custom_load_hooks = original
        return None

    @staticmethod
    def _damage(failure):
        # a failure on a file that is visibly damaged (or that cannot be
        # verified, e.g. a text counter) is damage; on an intact torch file
        # it is a mismatch between the checkpoint and the code
        if failure is None or failure[0] is None:
            return None
        return checkpoints.zip_damage(failure[0])

    @staticmethod
    def _worst_over_processes(outcome):
        if not is_distributed_initialized():
            return outcome
        nccl = torch.distributed.get_backend() == torch.distributed.Backend.NCCL
        value = torch.tensor([outcome], device=torch.cuda.current_device() if nccl else "cpu")
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return int(value.item())

    def _forget_loader_positions(self):
        # Every recoverable's loader overwrites its whole state (modules,
        # optimizers, scaler, epoch counter, Brain's step counters, our
        # counters) except a SaveableDataLoader's, which at an end-of-epoch
        # checkpoint keeps the batch to skip to that a damaged intra-epoch
        # checkpoint may have set. (A recoverable missing from the next
        # checkpoint, optional_load or allow_partial_load, keeps its state.)
        for obj in self.recoverables.values():
            if isinstance(obj, SaveableDataLoader) and obj._speechbrain_iterator is None:
                obj._speechbrain_recovery_skip_to = None




@register_checkpoint_hooks
class DeviceClock:
    """Device time of a training run: wall seconds x processes, summed over
    every resume (checkpointed), so a run reports the GPU (or CPU) hours
    papers report (paper 000: 2376 vs 1064 GPU hours). ``tick()`` adds the
    time since the last tick (or ``start()``).

    >>> clock = DeviceClock(); clock.start()
    >>> clock.tick() >= 0  # seconds so far, x processes
    True
    """

    def __init__(self):
        self.seconds = 0.0
        self._since = None

    def start(self):
        self._since = time.monotonic()

    def tick(self):
        """Count the time since the last tick, for every process."""
        now = time.monotonic()
        if self._since is not None:
            self.seconds += (now - self._since) * world_size()
        self._since = now
        return self.seconds

    @property
    def hours(self):
        return self.seconds / 3600

    @mark_as_saver
    def _save(self, path):
        Path(path).write_text(repr(self.tick()))

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        self.seconds = float(Path(path).read_text())
