"""glibc's thresholds: freed large buffers are reused instead of faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="keep_freed_memory acts on glibc only",
)

# a training step's pattern: a 40 MB buffer (logits) and its gradient, written, freed and
# allocated again; above glibc's adaptive 32 MiB limit, so its default always unmaps them.
# Prints the minor page faults of the last 8 of 12 rounds (the heap settles in the first 3)
PROBE = """
import resource, sys
import torch
from seqlab.train.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for step in range(12):
    if step == 4:
        start = faults()
    logits = torch.empty(1000, 10000).fill_(1.0)
    grad = torch.empty(1000, 10000).fill_(2.0)
    small = torch.empty(3000, 1000).fill_(3.0)
    del logits, grad, small
print(faults() - start)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def test_kept_memory_is_reused_without_page_faults() -> None:
    pages = 2 * 1000 * 10000 * 4 // 4096  # one round's two large buffers, in 4 KiB pages
    kept, default = _faults("keep"), _faults("default")
    assert kept < pages // 10  # the steady state reuses the heap
    assert default > 4 * pages  # glibc's default unmaps and faults them in every round


def test_keep_freed_memory_is_idempotent() -> None:
    from seqlab.train.allocator import keep_freed_memory

    assert keep_freed_memory()
    assert keep_freed_memory()
