"""A results root that fills up or turns read-only: one clear line (exit status 2), nothing half-written, and the
same command finishes the run once there is room again."""

import errno
import io
import json
import os
import re

import pytest

from tasbench import atomic
from tasbench.cli import main
from tasbench.runner import locks

from helpers import assert_one_line_error

TRAIN = [
    "train",
    "--network",
    "resnet20",
    "--dataset",
    "proxy",
    "--proxy-train",
    "64",
    "--proxy-test",
    "32",
    "--batch-size",
    "32",
    "--epochs",
    "1",
    "--no-progress",
]


class FullDisk(io.FileIO):
    """A file on a disk that fills up mid-write: half the bytes land, then ENOSPC, as a real write(2) would."""

    def write(self, data):
        super().write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_full_for(pattern: str):
    """An `open` for atomic.py under which writing a file whose name matches `pattern` runs out of space."""

    def fake_open(path, mode="r", *args, **kwargs):
        if "w" in mode and re.search(pattern, os.path.basename(path)):
            return FullDisk(path, mode)
        return open(path, mode, *args, **kwargs)

    return fake_open


def visible_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_a_full_disk_at_the_last_write_loses_nothing(capsys, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setattr(atomic, "open", disk_full_for(r"^\.metrics\.json\.tmp-"), raising=False)
    assert_one_line_error(
        capsys,
        [*TRAIN, "--out", str(root)],
        "metrics.json': No space left on device (ENOSPC); nothing was half-written; free space",
    )
    files = visible_files(root)
    assert not any("metrics.json" in f or ".tmp-" in f for f in files)  # no result, not even half of one
    assert any(f.endswith("checkpoint.pt") for f in files)  # the trained epoch is kept
    monkeypatch.undo()  # space again: the same command finishes from the checkpoint
    assert main([*TRAIN, "--out", str(root)]) == 0
    metrics = json.loads(capsys.readouterr()[0])
    assert metrics["epochs"] == 1 and not [f for f in visible_files(root) if ".tmp-" in f]


def test_a_full_disk_mid_checkpoint_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic.save_torch(path, {"epoch": 1})
    before = path.read_bytes()
    monkeypatch.setattr(atomic, "open", disk_full_for(r"\.tmp-"), raising=False)
    with pytest.raises(atomic.StorageError, match=f"cannot write '{path}': No space left on device \\(ENOSPC\\)"):
        atomic.save_torch(path, {"epoch": 2})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.pt"]


def read_only(root):
    """`open` and `mkdir` as on a read-only file system mounted at `root` (EROFS), for atomic.py and locks.py."""

    def refuse(path):
        if str(path).startswith(str(root)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def fake_open(path, mode="r", *args, **kwargs):
        if set(mode) & set("wax+"):
            refuse(path)
        return open(path, mode, *args, **kwargs)

    return fake_open, refuse


def test_a_read_only_results_root_is_one_clear_line(capsys, tmp_path, monkeypatch):
    """EROFS simulated (the tests may run as root, whom chmod does not stop): sweep and train stop at once."""
    from runner_helpers import write_spec

    root = tmp_path / "runs"
    root.mkdir()
    fake_open, refuse = read_only(root)
    for module in (atomic, locks):
        monkeypatch.setattr(module, "open", fake_open, raising=False)
    real_mkdir = type(root).mkdir
    monkeypatch.setattr(type(root), "mkdir", lambda self, *a, **k: refuse(self) or real_mkdir(self, *a, **k))
    spec = str(write_spec(tmp_path))
    assert main(["sweep", spec, "--out", str(root), "--wandb", "disabled"]) == 2
    out, err = capsys.readouterr()  # the sweep's plan, then the error as its last line
    assert out == "" and "Traceback" not in err
    assert err.splitlines()[-1].startswith(
        f"tas-bench: error: cannot write '{root}/train': Read-only file system (EROFS); nothing was half-written"
    )
    assert_one_line_error(capsys, [*TRAIN, "--out", str(root)], f"cannot write '{root}/train")
    assert list(root.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a 0o555 directory anyway; the EROFS test covers it")
def test_an_unwritable_results_root_is_one_clear_line(capsys, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    root.chmod(0o555)
    try:
        assert_one_line_error(capsys, [*TRAIN, "--out", str(root)], "Permission denied (EACCES)")
    finally:
        root.chmod(0o755)
    assert list(root.iterdir()) == []
