"""Atomic checkpoints: write to a temporary file, fsync, rename.

A crash mid-save leaves the previous checkpoint intact and loadable. A training
checkpoint holds everything needed to continue to exactly the numbers of an
uninterrupted run: model, optimizer and scheduler state, every RNG state, the step,
the epoch and the position within the epoch. Best weights are also written as
safetensors for ``seqlab eval`` / ``serve``.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from seqlab.errors import RunDirError
from seqlab.io import atomic_path, atomic_write_bytes


def rng_state() -> dict[str, Any]:
    """Every RNG state, in types ``torch.load(weights_only=True)`` reads without an
    allow-list: tensors, ints, floats, tuples (numpy's key array is stored as a tensor)."""
    numpy = np.random.get_state(legacy=False)  # MT19937: key (624,) uint32, pos, gauss
    return {
        "python": random.getstate(),  # (3, a tuple of 625 ints, None or a float)
        "numpy": {
            "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    if isinstance(numpy, dict):
        key = numpy["key"].cpu().numpy().astype(np.uint32)
        numpy = ("MT19937", key, numpy["pos"], numpy["has_gauss"], numpy["gauss"])
    np.random.set_state(numpy)  # else a tuple, as checkpoints before weights_only held
    torch.set_rng_state(state["torch"].cpu())  # ByteTensors on the CPU, wherever loaded
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# Checkpoints written before rng_state() stored numpy's key as a tensor hold it as an
# ndarray: these are the only globals such a file needs beyond what weights_only allows
# (numpy's array constructor, ``numpy._core`` or ``numpy.core.multiarray._reconstruct``).
_LEGACY_NUMPY_GLOBALS: list[Any] = [
    np.zeros(0).__reduce__()[0],
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically save a training state dict (tensors, numbers, RNG states)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Load a training state with ``weights_only=True``: tensors and plain values only, so a
    checkpoint from someone else cannot run code when it is read."""
    if not path.is_file():
        raise RunDirError(f"{path}: no checkpoint here; train first or check the run dir")
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY_GLOBALS):
            state: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if "nsupported" in line), lines[0] if lines else "")
        detail = detail.removeprefix("WeightsUnpickler error: ").split(". ")[0].rstrip(".")
        raise RunDirError(
            f"{path}: checkpoint refused: it holds more than tensors and plain values ({detail}); "
            "loading it could run code, so it is not loaded"
        ) from err
    except Exception as err:  # noqa: BLE001 - any other failure means a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunDirError(f"{path}: checkpoint is unreadable ({first})") from err
    return state


def save_weights(path: Path, module: torch.nn.Module) -> None:
    """Atomically write the module's parameters and buffers as safetensors."""
    tensors = {
        k: v.detach().cpu().contiguous()
        for k, v in module.state_dict().items()
        if isinstance(v, torch.Tensor)  # not ``_extra_state`` (training-time state)
    }
    _shared_clone(tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def _shared_clone(tensors: dict[str, torch.Tensor]) -> None:
    """safetensors refuses tensors that share memory (tied weights): clone duplicates."""
    seen: set[int] = set()
    for key, value in tensors.items():
        ptr = value.untyped_storage().data_ptr()
        if ptr in seen:
            tensors[key] = value.clone()
        seen.add(ptr)


def load_weights(path: Path, module: torch.nn.Module) -> None:
    if not path.is_file():
        raise RunDirError(f"{path}: no weights here; train first or check the run dir")
    try:
        state = load_file(str(path))
    except SafetensorError as err:
        raise RunDirError(
            f"{path}: not a safetensors file ({err}); weights are read as safetensors only, "
            "never unpickled"
        ) from err
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise RunDirError(f"{path}: weights do not fit this model ({first})") from err
    missing = [k for k in result.missing_keys if not k.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise RunDirError(
            f"{path}: weights do not fit this model (missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})"
        )
