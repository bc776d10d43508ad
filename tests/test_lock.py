"""The run-dir lock: one holder, named to whoever is refused, never stale."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import seqlab
from seqlab.errors import RunDirError
from seqlab.lock import run_dir_lock
from seqlab.rundir import RunDir

HOLD = """
import sys, time
from pathlib import Path
from seqlab.lock import run_dir_lock
with run_dir_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with run_dir_lock(run_dir):
        (run_dir / "config.yaml").write_text("task: x\n")
        with pytest.raises(RunDirError) as err, run_dir_lock(run_dir):
            pass
        assert str(err.value).startswith(f"{run_dir}: another process is training")
        assert f"pid {os.getpid()} on {socket.gethostname()}, since " in str(err.value)
    assert RunDir(run_dir).lock.read_text() == ""  # released: no holder named
    with run_dir_lock(run_dir):  # and free again
        pass


def test_a_dir_made_only_for_the_lock_is_removed_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "a" / "run"
    with run_dir_lock(run_dir):
        assert run_dir.is_dir()
    assert not run_dir.exists()
    (tmp_path / "file").write_text("")
    with (
        pytest.raises(RunDirError, match="exists and is not a directory"),
        run_dir_lock(tmp_path / "file"),
    ):
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(seqlab.__file__).parents[1])}
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], env=env, stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            with pytest.raises(RunDirError, match=f"pid {holder.pid} on "), run_dir_lock(run_dir):
                pass
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert RunDir(run_dir).lock.read_text().startswith(f"pid {holder.pid}")  # left as it was
    with run_dir_lock(run_dir):
        assert RunDir(run_dir).lock.read_text().startswith(f"pid {os.getpid()} ")
