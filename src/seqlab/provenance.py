"""``run.json``: where a run came from (command, config hash, code, machine) and how it ended.

``runs.train`` writes it atomically at the start of training (``status: running``) and
again at the end (``done``, ``failed`` or ``interrupted``), with the wall time and the
final metrics. ``seqlab report`` reads it to group runs into recipes and to print the
command that reproduces them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import seqlab
from seqlab.config import ExperimentConfig
from seqlab.io import atomic_write_text
from seqlab.rundir import RunDir

PYTHON_API = "python API"
"""The ``command`` of a run started from Python rather than the CLI."""

NOT_RECIPE = {"trainer": ("seed", "progress", "log_every", "tensorboard", "threads")}
"""Config keys that do not make a different recipe: the seed (runs differing only in it
are seeds of one recipe) and the settings that change no number (logging, threads)."""

GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Invocation:
    """How a run was started: the command line, its config file and ``--set`` overrides."""

    command: list[str] | str = PYTHON_API
    config_path: str | None = None
    overrides: list[str] = field(default_factory=list)

    @classmethod
    def from_cli(cls, config_path: Path | None, overrides: list[str]) -> Invocation:
        return cls(list(sys.argv), None if config_path is None else str(config_path), overrides)


def canonical(config: dict[str, Any]) -> str:
    """The config as canonical JSON (sorted keys, no spaces), what the hashes are taken of."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the resolved config (every default written out)."""
    return hashlib.sha256(canonical(config).encode("utf-8")).hexdigest()


def recipe_hash(config: dict[str, Any]) -> str:
    """sha256 of the config less the seed, the logging settings (``NOT_RECIPE``) and the
    anchor: runs with the same recipe hash differ only in seed."""
    plain = {k: v for k, v in config.items() if k != "anchor"}
    for section, keys in NOT_RECIPE.items():
        if isinstance(plain.get(section), dict):
            plain[section] = {k: v for k, v in plain[section].items() if k not in keys}
    return config_hash(plain)


def git_state(repo_dir: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout holding ``repo_dir`` (default: seqlab's
    own source); ``"unknown"`` for both when it is no checkout or git is missing."""
    where = repo_dir or Path(seqlab.__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
        )
        return done.stdout

    try:
        # an installed copy inside some other checkout (a venv in a repo) is no checkout
        git("ls-files", "--error-unmatch", "__init__.py")
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain").strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": commit, "dirty": dirty}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(device: str, threads: int) -> dict[str, Any]:
    """CPU model, cores, torch threads, and the GPU's name when the run uses one."""
    gpu = None
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        gpu = torch.cuda.get_device_name(index)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": threads if threads > 0 else torch.get_num_threads(),
        "gpu": gpu,
        "device": device,
        "processes": int(os.environ.get("WORLD_SIZE", "1") or 1),  # torchrun / --nproc
        "host": platform.node(),
        "platform": platform.platform(),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Provenance:
    """The ``run.json`` of one training session of a run dir."""

    def __init__(
        self, cfg: ExperimentConfig, run_dir: Path, invocation: Invocation, *, resume: bool
    ) -> None:
        self.path = RunDir(run_dir).provenance
        config = cfg.to_dict()
        earlier = read_provenance(run_dir) if resume else None
        self._clock = time.perf_counter()
        self.record: dict[str, Any] = {
            "status": "running",
            "command": invocation.command,
            "config_path": invocation.config_path,
            "overrides": list(invocation.overrides),
            "config_hash": config_hash(config),
            "recipe_hash": recipe_hash(config),
            "seed": cfg.trainer.seed,
            "resumed": resume,
            "first_start": (earlier or {}).get("first_start") or _now(),
            "start": _now(),
            "end": None,
            "wall_s": None,
            "git": git_state(),
            "machine": machine(cfg.trainer.device, cfg.trainer.threads),
            "versions": {
                "seqlab": seqlab.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "selection": {"metric": cfg.eval.metric, "mode": cfg.eval.mode},
            "metrics": None,
        }
        if earlier:  # the command that made the run stays; this one only continued it
            self.record["resume_command"] = invocation.command
            for key in ("command", "config_path", "overrides"):
                if earlier.get(key) is not None:
                    self.record[key] = earlier[key]

    def write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.record, indent=2, default=str) + "\n")

    def finish(
        self, status: str, metrics: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Record how the session ended (``done``, ``failed``, ``interrupted``) and write."""
        self.record["status"] = status
        self.record["end"] = _now()
        self.record["wall_s"] = round(time.perf_counter() - self._clock, 3)
        if metrics is not None:
            self.record["metrics"] = {k: v for k, v in metrics.items() if k != "per_fold"}
        if error is not None:
            self.record["error"] = error
        if self.path.parent.is_dir():  # a failed run that made nothing is removed whole
            self.write()


def read_provenance(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``run.json``, or None when it has none (a run trained before it existed)."""
    path = RunDir(run_dir).provenance
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None
