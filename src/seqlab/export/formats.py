"""The export formats: for each, how a wrapped model is written and how the written file is
run again (the client the export is verified with).

* ``onnx``: the TorchScript-based ONNX exporter (opset 17) with the adapter's named,
  dynamic axes; run with onnxruntime.
* ``torchscript``: ``torch.jit.trace`` of the wrapped model; run with ``torch.jit.load``.
* ``safetensors``: the model's weights (tied weights stored once per name) with metadata
  (task, model, the model config as JSON, inputs and outputs); run by building the model
  from the run's config and vocabulary and loading the weights into it.

torch marks TorchScript (and the exporter built on it) deprecated in favour of
``torch.export``; both still trace these models exactly, and their deprecation warnings
are silenced around the calls.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from seqlab.errors import RunDirError
from seqlab.export.adapters import ExportAdapter
from seqlab.registry import Registry

OPSET = 17

Runner = Callable[[Sequence[Tensor]], list[np.ndarray]]
"""An exported model as a function: input tensors (in the adapter's order) -> outputs."""


@contextmanager
def quiet_tracing() -> Iterator[None]:
    """Silence the tracer's and the exporter's warnings (deprecation of TorchScript, the
    tracer's notes on Python values taken as constants: argument checks and sizes that the
    traced graph does not depend on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class ExportFormat:
    """``write(wrapped, adapter, model, example, path, metadata)`` writes the file;
    ``load(path, adapter, fresh_model)`` returns a :data:`Runner` over it (``fresh_model``
    builds an untrained model of the run, for formats that hold only weights). ``weights``:
    the file holds the whole model's weights, not a graph, so a model of several graphs is
    one file."""

    suffix: str
    write: Callable[
        [nn.Module, ExportAdapter, nn.Module, tuple[Tensor, ...], Path, dict[str, str]], None
    ]
    load: Callable[[Path, ExportAdapter, Callable[[], nn.Module]], Runner]
    weights: bool = False


def _to_numpy(outputs: Any) -> list[np.ndarray]:
    items = outputs if isinstance(outputs, tuple | list) else (outputs,)
    return [item.detach().cpu().numpy() for item in items]


# ----------------------------------------------------------------------------- ONNX


def _write_onnx(
    wrapped: nn.Module,
    adapter: ExportAdapter,
    model: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    metadata: dict[str, str],
) -> None:
    inputs, outputs = adapter.inputs(model), adapter.outputs(model)
    axes = {spec.name: spec.dynamic_axes for spec in (*inputs, *outputs) if spec.dynamic_axes}
    with quiet_tracing(), torch.no_grad():
        torch.onnx.export(
            wrapped,
            example,
            str(path),
            dynamo=False,
            input_names=[spec.name for spec in inputs],
            output_names=[spec.name for spec in outputs],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    import onnx

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def _load_onnx(path: Path, adapter: ExportAdapter, fresh_model: Callable[[], nn.Module]) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: not the graph optimiser's notes
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]

    def run(tensors: Sequence[Tensor]) -> list[np.ndarray]:
        feeds = {name: t.cpu().numpy() for name, t in zip(names, tensors, strict=True)}
        return [np.asarray(out) for out in session.run(None, feeds)]

    return run


# ----------------------------------------------------------------------------- TorchScript


def _write_torchscript(
    wrapped: nn.Module,
    adapter: ExportAdapter,
    model: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    metadata: dict[str, str],
) -> None:
    with quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(wrapped, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"seqlab.json": json.dumps(metadata)})


def _load_torchscript(
    path: Path, adapter: ExportAdapter, fresh_model: Callable[[], nn.Module]
) -> Runner:
    with quiet_tracing():
        module = torch.jit.load(str(path), map_location="cpu")

    def run(tensors: Sequence[Tensor]) -> list[np.ndarray]:
        with torch.no_grad():
            return _to_numpy(module(*tensors))

    return run


# ----------------------------------------------------------------------------- safetensors


def _write_safetensors(
    wrapped: nn.Module,
    adapter: ExportAdapter,
    model: nn.Module,
    example: tuple[Tensor, ...],
    path: Path,
    metadata: dict[str, str],
) -> None:
    tensors: dict[str, Tensor] = {}
    seen: dict[int, str] = {}
    for name, value in model.state_dict().items():
        if not isinstance(value, Tensor):
            continue  # ``_extra_state``: training-time state, not weights
        value = value.detach().cpu().contiguous()
        pointer = value.untyped_storage().data_ptr()
        tensors[name] = value.clone() if pointer in seen else value
        seen.setdefault(pointer, name)
    save_file(tensors, str(path), metadata=metadata)


def _load_safetensors(
    path: Path, adapter: ExportAdapter, fresh_model: Callable[[], nn.Module]
) -> Runner:
    model = fresh_model()
    try:
        state = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - a header safetensors cannot read: a bad file
        raise RunDirError(f"{path}: not a safetensors file ({err})") from err
    model.load_state_dict(state, strict=False)
    model.eval()
    wrapped = adapter.wrap(model).eval()

    def run(tensors: Sequence[Tensor]) -> list[np.ndarray]:
        with torch.no_grad():
            return _to_numpy(wrapped(*tensors))

    return run


FORMATS: Registry[ExportFormat] = Registry("export format")
FORMATS.register("onnx", ExportFormat(".onnx", _write_onnx, _load_onnx))
FORMATS.register(
    "torchscript", ExportFormat(".torchscript.pt", _write_torchscript, _load_torchscript)
)
FORMATS.register(
    "safetensors",
    ExportFormat(".safetensors", _write_safetensors, _load_safetensors, weights=True),
)
