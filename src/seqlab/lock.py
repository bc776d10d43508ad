"""One writer per run dir: an exclusive ``fcntl.flock`` on ``RunDir(path).lock``.

The OS releases the lock when its holder exits, crashes or is killed, so a lock is never
stale. The holder writes its pid and host into the file, so that a second process can name
it when it is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from seqlab.errors import RunDirError
from seqlab.rundir import RunDir


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the ``with`` body (the dir is made if missing).

    Raises RunDirError naming the holder if another process holds it. A dir made here
    that holds nothing else when the body ends is removed again.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a directory")
    made = not run_dir.exists()
    fd = _acquire(run_dir)
    try:
        os.ftruncate(fd, 0)  # a killed holder leaves its line behind
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {_now()}\n".encode())
        yield
    finally:
        os.ftruncate(fd, 0)
        lock = RunDir(run_dir).lock
        if made and run_dir.is_dir() and list(run_dir.iterdir()) == [lock]:
            lock.unlink()  # still held: a process that opened it retries
            with contextlib.suppress(OSError):  # another process may have made a new lock
                run_dir.rmdir()
        os.close(fd)  # releases the lock


def _acquire(run_dir: Path) -> int:
    path = RunDir(run_dir).lock
    while True:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise RunDirError(
                f"{run_dir}: another process is training in this run dir "
                f"({holder or 'it has not written its pid yet'}); wait for it to finish, "
                "stop it, or use --out to train elsewhere"
            ) from None
        try:  # the holder before us may have removed the file: then lock the new one
            current = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        if os.path.samestat(os.fstat(fd), current):
            return fd
        os.close(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
