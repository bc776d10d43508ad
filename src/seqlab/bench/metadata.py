"""What every benchmark records beside its numbers: when, which code, which machine.

``bench_metadata(device)``: date (UTC, ISO 8601), git commit and dirty flag of seqlab's
checkout, CPU model, cores, torch threads, torch version, the device measured on and the
1-minute load average when the numbers were taken (this project's machines are shared,
so a ratio is only as good as the load it was measured under).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch

from seqlab.provenance import cpu_model, git_state


def bench_metadata(device: str = "cpu") -> dict[str, Any]:
    git = git_state()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "device": device,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
