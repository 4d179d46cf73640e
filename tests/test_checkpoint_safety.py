"""Damaged checkpoints are reported and skipped, a failing save is a clear
error that leaves the previous checkpoints intact, and every reader agrees
on which checkpoints count (``speechbrain_ext.io.checkpoints``)."""
import errno
import logging
import os
import re

import pytest
import torch
from speechbrain.dataio.dataloader import SaveableDataLoader

from speechbrain_ext.downstream.results import pretraining_hours
from speechbrain_ext.interop.loading import load_backbone
from speechbrain_ext.io import checkpoints
from speechbrain_ext.io.checkpoints import CheckpointError
from speechbrain_ext.models.registry import save_backbone
from speechbrain_ext.models.wav2vec2 import Wav2Vec2Backbone, Wav2Vec2Config
from speechbrain_ext.training.checkpointing import AudioCounter, SafeCheckpointer

TRAINING_LOG = "speechbrain_ext.training.checkpointing"


def linear(value):
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.fill_(value)
        layer.bias.fill_(value)
    return layer


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def ckpt_folders(save):
    return sorted(p.name for p in save.iterdir() if p.name.startswith("CKPT+"))


def two_checkpoints(save, extra=None):
    """Save a checkpoint of weights 1.0, then a newer one of weights 2.0;
    returns (the layer, older folder, newer folder)."""
    layer = linear(1.0)
    recoverables = {**(extra or {}), "layer": layer}
    checkpointer = SafeCheckpointer(save, recoverables=recoverables)
    older = checkpointer.save_checkpoint(meta={"n": 1}).path
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(2.0)
    newer = checkpointer.save_checkpoint(meta={"n": 2}).path
    assert checkpointer.find_checkpoint().path == newer
    return layer, older, newer


def test_meta_names_are_speechbrains():
    from speechbrain.utils import checkpoints as sb_checkpoints

    assert checkpoints.PREFIX == sb_checkpoints.CKPT_PREFIX + "+"
    assert checkpoints.META_FILE == sb_checkpoints.METAFNAME
    assert SafeCheckpointer.MARKER == checkpoints.MARKER


def test_complete_checkpoints_sort_by_meta_time_then_mtime(tmp_path):
    def folder(name, unixtime=None, mtime=0, complete=True):
        path = tmp_path / name
        path.mkdir()
        meta = f"unixtime: {unixtime}\nend-of-epoch: true\n" if unixtime else "{{{ garbage"
        (path / checkpoints.META_FILE).write_text(meta)
        if complete:
            (path / checkpoints.MARKER).write_text("")
        os.utime(path, (mtime, mtime))

    folder("CKPT+old-meta-new-mtime", unixtime=100, mtime=900)
    folder("CKPT+new-meta-old-mtime", unixtime=500, mtime=10)
    folder("CKPT+unreadable-meta", mtime=300)  # falls back to its mtime
    folder("CKPT+incomplete", unixtime=999, mtime=999, complete=False)
    (tmp_path / "damaged-CKPT+x").mkdir()
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path)] == [
        "CKPT+new-meta-old-mtime", "CKPT+unreadable-meta", "CKPT+old-meta-new-mtime"]
    assert checkpoints.latest_checkpoint(tmp_path).name == "CKPT+new-meta-old-mtime"
    assert checkpoints.complete_checkpoints(tmp_path / "missing") == []
    assert checkpoints.latest_checkpoint(tmp_path / "missing") is None


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    layer, older, newer = two_checkpoints(tmp_path)
    truncate(newer / "layer.ckpt")
    fresh = linear(0.0)
    with caplog.at_level(logging.WARNING, logger=TRAINING_LOG):
        loaded = SafeCheckpointer(tmp_path, recoverables={"layer": fresh}).recover_if_possible()
    assert loaded.path == older and loaded.meta["n"] == 1
    assert torch.equal(fresh.weight, torch.full((2, 2), 1.0))
    assert torch.equal(fresh.bias, torch.full((2,), 1.0))
    warning = caplog.text
    assert str(newer) in warning and str(newer / "layer.ckpt") in warning
    # kept under a new name, no longer listed
    moved = tmp_path / f"damaged-{newer.name}"
    assert not newer.exists() and (moved / "layer.ckpt").is_file() and str(moved) in warning
    assert ckpt_folders(tmp_path) == [older.name]
    again = SafeCheckpointer(tmp_path, recoverables={"layer": linear(0.0)}).recover_if_possible()
    assert again.path == older


@pytest.mark.parametrize("damage", ["empty counter", "garbage meta", "truncated meta"])
def test_any_damaged_part_falls_back(tmp_path, caplog, damage):
    counter = AudioCounter()
    counter.seconds = 10.0
    _, older, newer = two_checkpoints(tmp_path, extra={"audio_counter": counter})
    if damage == "empty counter":
        (newer / "audio_counter.ckpt").write_text("")
    elif damage == "garbage meta":
        (newer / checkpoints.META_FILE).write_bytes(b"\xff\x00{{ not yaml")
    else:
        (newer / checkpoints.META_FILE).write_text("# yamllint disable\nend-of-ep")
    fresh, fresh_counter = linear(0.0), AudioCounter()
    with caplog.at_level(logging.WARNING, logger=TRAINING_LOG):
        loaded = SafeCheckpointer(
            tmp_path, recoverables={"audio_counter": fresh_counter, "layer": fresh}
        ).recover_if_possible()
    assert loaded.path == older
    assert torch.equal(fresh.weight, torch.full((2, 2), 1.0)) and fresh_counter.seconds == 10.0
    assert str(newer) in caplog.text and (tmp_path / f"damaged-{newer.name}").is_dir()


def test_saving_goes_on_beside_a_checkpoint_whose_meta_got_damaged(tmp_path, caplog):
    """SpeechBrain lists every checkpoint's meta before deleting old ones."""
    layer, older, newer = two_checkpoints(tmp_path)
    (older / checkpoints.META_FILE).write_text("{{{ garbage")
    checkpointer = SafeCheckpointer(tmp_path, recoverables={"layer": layer})
    with caplog.at_level(logging.WARNING, logger=TRAINING_LOG):
        checkpointer.save_and_keep_only(num_to_keep=1)
    assert str(older) in caplog.text
    assert len(checkpointer.list_checkpoints()) == 1 and older.is_dir()  # unlisted, not deleted
    assert not newer.exists()


def test_min_key_recovery_skips_a_damaged_best(tmp_path, caplog):
    layer = linear(1.0)
    checkpointer = SafeCheckpointer(tmp_path, recoverables={"layer": layer})
    worse = checkpointer.save_checkpoint(meta={"loss": 2.0}).path
    with torch.no_grad():
        layer.weight.fill_(3.0)
    best = checkpointer.save_checkpoint(meta={"loss": 1.0}).path
    with torch.no_grad():
        layer.weight.fill_(5.0)
    checkpointer.save_checkpoint(meta={"other": 0})  # newest, without the key
    truncate(best / "layer.ckpt")
    fresh = linear(0.0)
    with caplog.at_level(logging.WARNING, logger=TRAINING_LOG):
        loaded = SafeCheckpointer(tmp_path, recoverables={"layer": fresh}).recover_if_possible(
            min_key="loss")
    assert loaded.path == worse and torch.equal(fresh.weight, torch.full((2, 2), 1.0))
    assert str(best / "layer.ckpt") in caplog.text


def test_dataloader_position_of_a_damaged_checkpoint_is_forgotten(tmp_path):
    """SaveableDataLoader ignores an end-of-epoch checkpoint's file, so the
    batch to skip to that a damaged intra-epoch checkpoint set would stay."""
    loader, layer = SaveableDataLoader(list(range(10)), batch_size=1), linear(1.0)
    checkpointer = SafeCheckpointer(tmp_path, recoverables={"loader": loader, "layer": layer})
    older = checkpointer.save_checkpoint(end_of_epoch=True).path
    batches = iter(loader)
    for _ in range(3):
        next(batches)
    newer = checkpointer.save_checkpoint(end_of_epoch=False).path
    assert (newer / "loader.ckpt").read_text() == "3"
    truncate(newer / "layer.ckpt")
    fresh_loader = SaveableDataLoader(list(range(10)), batch_size=1)
    loaded = SafeCheckpointer(
        tmp_path, recoverables={"loader": fresh_loader, "layer": linear(0.0)}).recover_if_possible()
    assert loaded.path == older
    assert fresh_loader._speechbrain_recovery_skip_to is None
    assert [int(b) for b in fresh_loader][:1] == [0]


def test_intact_file_that_does_not_fit_is_an_error_and_moves_nothing(tmp_path):
    """A changed model is no damage: skipping would silently restart the run."""
    _, older, newer = two_checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match=re.escape(str(newer / "layer.ckpt"))) as caught:
        SafeCheckpointer(tmp_path, recoverables={"layer": torch.nn.Linear(3, 3)}).recover_if_possible()
    assert "intact" in str(caught.value)
    assert ckpt_folders(tmp_path) == sorted([older.name, newer.name])


def test_every_checkpoint_damaged_is_a_clear_error_then_a_fresh_start(tmp_path, caplog):
    _, older, newer = two_checkpoints(tmp_path)
    for folder in (older, newer):
        truncate(folder / "layer.ckpt")
    with caplog.at_level(logging.WARNING, logger=TRAINING_LOG):
        with pytest.raises(CheckpointError, match="no checkpoint .* could be loaded"):
            SafeCheckpointer(tmp_path, recoverables={"layer": linear(0.0)}).recover_if_possible()
    assert str(older / "layer.ckpt") in caplog.text and str(newer / "layer.ckpt") in caplog.text
    assert ckpt_folders(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"damaged-{older.name}", f"damaged-{newer.name}"])
    assert SafeCheckpointer(tmp_path, recoverables={"layer": linear(0.0)}).recover_if_possible() is None


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_save_names_the_folder_and_keeps_the_previous(tmp_path, monkeypatch):
    layer, older, newer = two_checkpoints(tmp_path)
    checkpointer = SafeCheckpointer(tmp_path, recoverables={"layer": layer})
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError) as caught:
        # SpeechBrain deletes the others after a save: the error must come first
        checkpointer.save_and_keep_only(meta={"n": 3}, num_to_keep=1)
    monkeypatch.undo()
    message = str(caught.value)
    folder = re.search(r"checkpoint (\S*CKPT\+\S+) failed", message).group(1)
    assert folder.startswith(str(tmp_path)) and "No space left on device" in message
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENOSPC
    assert ckpt_folders(tmp_path) == sorted([older.name, newer.name])  # partial folder removed
    fresh = linear(0.0)
    loaded = SafeCheckpointer(tmp_path, recoverables={"layer": fresh}).recover_if_possible()
    assert loaded.path == newer and torch.equal(fresh.weight, torch.full((2, 2), 2.0))
    SafeCheckpointer(tmp_path, recoverables={"layer": fresh}).load_checkpoint(
        next(c for c in checkpointer.list_checkpoints() if c.path == older))
    assert torch.equal(fresh.weight, torch.full((2, 2), 1.0))


def test_failed_save_under_an_existing_name_keeps_the_old_one(tmp_path, monkeypatch):
    layer = linear(1.0)
    checkpointer = SafeCheckpointer(tmp_path, recoverables={"layer": layer})
    checkpointer.save_checkpoint(name="best")
    with torch.no_grad():
        layer.weight.fill_(2.0)
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "CKPT+best"))):
        checkpointer.save_checkpoint(name="best")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CKPT+best"]
    fresh = linear(0.0)
    SafeCheckpointer(tmp_path, recoverables={"layer": fresh}).recover_if_possible()
    assert torch.equal(fresh.weight, torch.full((2, 2), 1.0))
    checkpointer.save_checkpoint(name="best")  # a successful replacement
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CKPT+best"]
    SafeCheckpointer(tmp_path, recoverables={"layer": fresh}).recover_if_possible()
    assert torch.equal(fresh.weight, torch.full((2, 2), 2.0))


def _recover_on_rank(rank, save, port, out):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        layer = linear(0.0)
        loaded = SafeCheckpointer(save, recoverables={"layer": layer}).recover_if_possible()
        (out / f"rank{rank}").write_text(f"{loaded.path.name} {float(layer.weight[0, 0])}")
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_processes_agree_and_only_the_main_one_renames(tmp_path):
    import socket

    import torch.multiprocessing as mp

    save, out = tmp_path / "save", tmp_path / "out"
    out.mkdir()
    _, older, newer = two_checkpoints(save)
    truncate(newer / "layer.ckpt")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_recover_on_rank, args=(save, port, out), nprocs=2, join=True)
    assert [(out / f"rank{r}").read_text() for r in (0, 1)] == [f"{older.name} 1.0"] * 2
    assert sorted(p.name for p in save.iterdir()) == sorted([older.name, f"damaged-{newer.name}"])


# -- load_backbone ------------------------------------------------------------

def tiny_backbone(seed):
    torch.manual_seed(seed)
    return Wav2Vec2Backbone(Wav2Vec2Config.micro(num_layers=1))


def backbone_checkpoint(save, name, seed, unixtime, complete=True):
    folder = save / name
    model = tiny_backbone(seed)
    save_backbone(model, folder / "backbone.ckpt")
    (folder / checkpoints.META_FILE).write_text(f"end-of-epoch: true\nunixtime: {unixtime}\n")
    (folder / "audio_counter.ckpt").write_text(repr(3600.0 * seed))
    if complete:
        (folder / checkpoints.MARKER).write_text("")
    return folder, model


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_load_backbone_skips_incomplete_and_damaged_newer_checkpoints(tmp_path, caplog):
    _, good = backbone_checkpoint(tmp_path, "CKPT+a", seed=1, unixtime=100)
    damaged, _ = backbone_checkpoint(tmp_path, "CKPT+b", seed=2, unixtime=200)
    truncate(damaged / "backbone.ckpt")
    backbone_checkpoint(tmp_path, "CKPT+c", seed=3, unixtime=300, complete=False)
    with caplog.at_level(logging.WARNING, logger="speechbrain_ext.models.registry"):
        loaded = load_backbone(tmp_path)
    assert same_weights(loaded, good) and not loaded.training
    assert str(damaged) in caplog.text and "CKPT+c" not in caplog.text
    assert damaged.is_dir()  # a reader renames nothing


def test_load_backbone_picks_the_newest_complete_one(tmp_path):
    backbone_checkpoint(tmp_path, "CKPT+a", seed=1, unixtime=100)
    folder, newest = backbone_checkpoint(tmp_path, "CKPT+b", seed=2, unixtime=200)
    os.utime(folder, (0, 0))  # the meta's time decides, as in SpeechBrain
    assert same_weights(load_backbone(tmp_path), newest)
    assert pretraining_hours(tmp_path) == pytest.approx(2.0)


def test_save_folder_without_complete_checkpoint_is_a_clear_error(tmp_path):
    backbone_checkpoint(tmp_path, "CKPT+a", seed=1, unixtime=100, complete=False)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        load_backbone(tmp_path)
    assert pretraining_hours(tmp_path) is None


def test_save_folder_whose_complete_checkpoints_are_all_damaged(tmp_path, caplog):
    for name, seed in (("CKPT+a", 1), ("CKPT+b", 2)):
        folder, _ = backbone_checkpoint(tmp_path, name, seed=seed, unixtime=seed)
        truncate(folder / "backbone.ckpt")
    with pytest.raises(CheckpointError, match="none of its 2 complete checkpoints") as caught:
        load_backbone(tmp_path)
    assert str(tmp_path / "CKPT+a" / "backbone.ckpt") in str(caught.value)
    assert str(tmp_path / "CKPT+b" / "backbone.ckpt") in str(caught.value)


def test_checkpoint_folder_given_itself_loads_without_marker(tmp_path, caplog):
    folder, model = backbone_checkpoint(tmp_path, "CKPT+hand-made", seed=1, unixtime=1,
                                        complete=False)
    with caplog.at_level(logging.WARNING, logger="speechbrain_ext.models.registry"):
        assert same_weights(load_backbone(folder), model)
    assert "no COMPLETE marker" in caplog.text
    truncate(folder / "backbone.ckpt")
    with pytest.raises(CheckpointError, match=re.escape(str(folder / "backbone.ckpt"))):
        load_backbone(folder)
