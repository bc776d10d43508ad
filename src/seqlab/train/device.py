"""Devices: check that the device a run names is present, before any data is read; the
device a model is on (batches move there with :func:`seqlab.contract.move_to`)."""

from __future__ import annotations

import os

import torch
from torch import nn

from seqlab.errors import ConfigError


def fallback_device() -> str:
    """The device to suggest when the requested GPU is missing: mps if present, else cpu."""
    return "mps" if torch.backends.mps.is_available() else "cpu"


def check_device(device: str) -> None:
    """Raise ConfigError (one line, naming the device to use instead) unless ``device`` is
    present. ``device`` has the form ``TrainerConfig.validate`` checks: ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps``."""
    if device == "cpu":
        return
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(
                "trainer.device is 'mps' but no MPS (Apple GPU) device is available; "
                "use trainer.device=cpu instead"
            )
        return
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise ConfigError(
            f"trainer.device is {device!r} but no CUDA GPU is visible (torch "
            f"{torch.__version__}, CUDA_VISIBLE_DEVICES={visible}); "
            f"use trainer.device={fallback_device()} instead"
        )
    count = torch.cuda.device_count()
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise ConfigError(
            f"trainer.device is {device!r} but only {count} CUDA GPU(s) are visible "
            f"(cuda:0 to cuda:{count - 1}); use one of those"
        )


def module_device(module: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """The device of the module's first parameter or buffer (``default`` without any)."""
    for param in module.parameters():
        return param.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device(default)
