"""Keep freed memory in the process (glibc ``mallopt``), so CPU training does not pay a page
fault for every page of its large per-step buffers.

A CPU training step allocates and frees the same large tensors every step (an LM's logits
and their gradient: batch x BPTT x vocabulary floats, 28 MB for ``ptb_small``). glibc
serves blocks above its mmap threshold with a fresh ``mmap`` and unmaps them on ``free``;
its threshold adapts upwards, but only to 32 MiB at most, and the heap's top is trimmed
back to the kernel whenever more than twice the threshold is free there. Either way the
next step touches new pages, and the kernel zeroes each one on its first write: measured
on ``ptb_small`` (2026-12-03), about 10,000 minor faults a step (40 MB), where with the
thresholds raised the steady state has none. Raising both thresholds keeps the freed
blocks in the heap to be reused; the price is that the process's resident memory stays
at its peak instead of shrinking between steps.

The allocator's behaviour is process-wide; torch's CPU allocator calls ``posix_memalign``
and so goes through glibc's. Other C libraries (musl, macOS, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

MMAP_THRESHOLD = 256 << 20
"""Blocks below 256 MiB come from the heap (glibc's own adaptive maximum is 32 MiB)."""
TRIM_THRESHOLD = 1 << 30
"""Return the heap's free top to the kernel only when more than 1 GiB of it is free."""

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
_applied = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once; later calls do
    nothing). Returns True when they are set (now or before), False where the C library
    is not glibc or refuses."""
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return False
    # mallopt returns 1 on success, 0 on error
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    _applied = ok
    return ok
