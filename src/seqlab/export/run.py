"""Export a finished run: load it once, write the model in a format, verify the file.

The file is checked before :func:`export_run` returns: the exported model, run by its own
client (onnxruntime, ``torch.jit.load``, or safetensors loaded into a freshly built model),
must give the PyTorch model's outputs within ``ATOL`` on batches of different sizes and
lengths (:data:`VERIFY_LENGTHS`); otherwise the file is removed and an ExportError names
the largest difference.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from seqlab import __version__
from seqlab.errors import SeqlabError
from seqlab.evaluation import LoadedRun
from seqlab.export.adapters import EXPORTS, ExportAdapter
from seqlab.export.formats import FORMATS, OPSET, Runner
from seqlab.io import atomic_write_text
from seqlab.nn.recurrent import Recurrent
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask

ATOL = 1e-4
VERIFY_LENGTHS: tuple[tuple[int, ...], ...] = ((5, 3, 4), (1,), (7, 1, 2, 6, 3), (2, 2))
"""The batches an export is verified on: example ``b`` has ``lengths[b]`` words (memories
for bAbI; a language model's window is ``max(lengths)`` steps)."""
EXAMPLE_LENGTHS = (4, 2, 3)
"""The batch the model is traced with (its sizes are not baked in)."""


class ExportError(SeqlabError):
    """The model cannot be exported, or the exported file does not reproduce it."""


def adapter_for(run: LoadedRun) -> ExportAdapter:
    """The export adapter of the run's task and model (``EXPORTS["task/model"]``)."""
    key = f"{run.cfg.task}/{run.cfg.model.name}"
    if key not in EXPORTS:
        raise ExportError(
            f"{run.run_dir}: no export for {key} (exportable: {', '.join(EXPORTS.names())})"
        )
    return EXPORTS.get(key)


def check_exportable(model: nn.Module) -> None:
    """Recurrent layers must run torch's fused kernel: the explicit per-step loop (peephole
    LSTM, ``force_explicit``, BPTT clipping) would be traced unrolled to one length."""
    for name, module in model.named_modules():
        if isinstance(module, Recurrent) and not module.fused:
            raise ExportError(
                f"layer {name!r} ({module.cell_type}) runs the explicit per-step loop, which "
                "does not export for variable lengths; export supports the fused cells "
                "(lstm, gru, rnn_tanh, rnn_relu without force_explicit or bptt_clip)"
            )


def verify(
    runner: Runner, adapter: ExportAdapter, model: nn.Module, seed: int = 0
) -> tuple[float, int]:
    """The largest |exported - PyTorch| over the outputs of the :data:`VERIFY_LENGTHS`
    batches (``-inf`` logits must match exactly), and how many batches were checked."""
    wrapped = adapter.wrap(model).eval()
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for lengths in VERIFY_LENGTHS:
        batch = adapter.example(model, lengths, generator)
        with torch.no_grad():
            expected = wrapped(*batch)
        got = runner(batch)
        if len(got) != len(expected):
            raise ExportError(f"the exported model returns {len(got)} outputs, not {len(expected)}")
        for want, have in zip(expected, got, strict=True):
            worst = max(worst, max_difference(want.detach().cpu().numpy(), have))
    return worst, len(VERIFY_LENGTHS)


def max_difference(expected: np.ndarray, got: np.ndarray) -> float:
    """max |expected - got|, with equal infinities counted as equal; inf on a shape
    mismatch or an infinity on one side only."""
    if expected.shape != got.shape:
        return float("inf")
    same_inf = np.isinf(expected) & (expected == got)
    with np.errstate(invalid="ignore"):  # inf - inf where both are -inf: counted as equal
        diff = np.abs(np.where(same_inf, 0.0, expected.astype(np.float64) - got))
    return float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0


def export_run(
    run_dir: Path, fmt: str, out: Path | None = None, *, run: LoadedRun | None = None
) -> dict[str, Any]:
    """Write the run's model as ``fmt`` into ``out`` (default ``RUN_DIR/export``) with its
    manifest ``model.json`` and the run's vocabularies, verified; returns the manifest."""
    writer = FORMATS.get(fmt)
    run = run if run is not None else LoadedRun.load(run_dir, device="cpu")
    adapter = adapter_for(run)
    model = run.model.to("cpu").eval()
    check_exportable(model)
    out_dir = out if out is not None else RunDir(run_dir).export_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"model{writer.suffix}"
    inputs, outputs = adapter.inputs(model), adapter.outputs(model)
    manifest: dict[str, Any] = {
        "format": fmt,
        "file": path.name,
        "task": run.cfg.task,
        "model": run.cfg.model.name,
        "model_config": asdict(run.cfg.model),
        "inputs": [asdict(spec) for spec in inputs],
        "outputs": [asdict(spec) for spec in outputs],
        "seqlab": __version__,
        "torch": torch.__version__,
    }
    if fmt == "onnx":
        manifest["opset"] = OPSET
    metadata = {
        key: json.dumps(manifest[key])
        for key in ("task", "model", "model_config", "inputs", "outputs")
    }
    example = adapter.example(model, EXAMPLE_LENGTHS, torch.Generator().manual_seed(1))
    try:
        writer.write(adapter.wrap(model).eval(), adapter, model, example, path, metadata)
        task = cast(TrainedTask[Any], run.task)  # every exportable task is gradient-trained
        runner = writer.load(path, adapter, lambda: task.build_model(run.cfg, run.data))
        worst, batches = verify(runner, adapter, model)
    except ExportError:
        path.unlink(missing_ok=True)
        raise
    except Exception as err:  # noqa: BLE001 - the exporter's own failures, in one line
        path.unlink(missing_ok=True)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{run_dir}: {fmt} export failed ({first})") from err
    if not worst <= ATOL:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"{run_dir}: the {fmt} export differs from the PyTorch model by {worst:.3g} "
            f"(> {ATOL}); not kept"
        )
    manifest["verified"] = {"batches": batches, "max_abs_diff": worst, "atol": ATOL}
    for vocabulary in RunDir(run.run_dir).vocabularies:
        if vocabulary.is_file():
            shutil.copyfile(vocabulary, out_dir / vocabulary.name)
    manifest["vocabularies"] = sorted(
        v.name for v in RunDir(run.run_dir).vocabularies if v.is_file()
    )
    atomic_write_text(out_dir / "model.json", json.dumps(manifest, indent=2) + "\n")
    manifest["path"] = str(path)
    return manifest
