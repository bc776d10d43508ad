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
from seqlab.export.adapters import EXPORTS, NOT_FAITHFUL, ExportAdapter, ExportGraphs
from seqlab.export.formats import FORMATS, OPSET, Runner
from seqlab.io import atomic_write_text
from seqlab.nn.recurrent import Recurrent
from seqlab.rundir import RunDir
from seqlab.runs import load_run_config
from seqlab.tasks.base import TrainedTask

ATOL = 1e-4
VERIFY_LENGTHS: tuple[tuple[int, ...], ...] = ((5, 3, 4), (1,), (7, 1, 2, 6, 3), (2, 2))
"""The batches an export is verified on: example ``b`` has ``lengths[b]`` words (memories
for bAbI; a language model's window is ``max(lengths)`` steps)."""
EXAMPLE_LENGTHS = (4, 2, 3)
"""The batch the model is traced with (its sizes are not baked in)."""


class ExportError(SeqlabError):
    """The model cannot be exported, or the exported file does not reproduce it."""


def adapter_for(run_dir: Path, task: str, model: str) -> ExportAdapter | ExportGraphs:
    """The export adapter(s) of a run's task and model (``EXPORTS["task/model"]``); a model
    without one is an ExportError that says why (:data:`NOT_FAITHFUL`) or what can be."""
    key = f"{task}/{model}"
    if key in NOT_FAITHFUL:
        raise ExportError(f"{run_dir}: {key} cannot be exported faithfully: {NOT_FAITHFUL[key]}")
    if key not in EXPORTS:
        raise ExportError(
            f"{run_dir}: no export for {key} (exportable: {', '.join(EXPORTS.names())})"
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
    manifest ``model.json`` and the run's vocabularies, verified; returns the manifest.

    A model of several graphs (:class:`ExportGraphs`) is written one file per part
    (``encoder.onnx``, ``decoder_step.onnx``; a weights format writes ``model.safetensors``
    once), each verified alone; the manifest lists them under ``parts``."""
    writer = FORMATS.get(fmt)
    cfg = run.cfg if run is not None else load_run_config(run_dir)
    entry = adapter_for(run_dir, cfg.task, cfg.model.name)  # before the run's data is read
    run = run if run is not None else LoadedRun.load(run_dir, device="cpu")
    model = run.model.to("cpu").eval()
    check_exportable(model)
    out_dir = out if out is not None else RunDir(run_dir).export_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    graphs = entry.parts if isinstance(entry, ExportGraphs) else (("model", entry),)
    manifest: dict[str, Any] = {
        "format": fmt,
        "task": run.cfg.task,
        "model": run.cfg.model.name,
        "model_config": asdict(run.cfg.model),
        "seqlab": __version__,
        "torch": torch.__version__,
    }
    if fmt == "onnx":
        manifest["opset"] = OPSET
    specs = {
        name: {
            "inputs": [asdict(spec) for spec in adapter.inputs(model)],
            "outputs": [asdict(spec) for spec in adapter.outputs(model)],
        }
        for name, adapter in graphs
    }
    task = cast(TrainedTask[Any], run.task)  # every exportable task is gradient-trained
    written: list[Path] = []
    parts: dict[str, dict[str, Any]] = {}
    try:
        for name, adapter in graphs:
            path = out_dir / f"{'model' if writer.weights else name}{writer.suffix}"
            if path not in written:
                shown = specs if writer.weights and len(graphs) > 1 else specs[name]
                metadata = {key: json.dumps(manifest[key]) for key in ("task", "model")}
                metadata["model_config"] = json.dumps(manifest["model_config"])
                metadata.update({key: json.dumps(value) for key, value in shown.items()})
                if len(graphs) > 1 and not writer.weights:
                    metadata["part"] = json.dumps(name)
                example = adapter.example(model, EXAMPLE_LENGTHS, torch.Generator().manual_seed(1))
                written.append(path)
                writer.write(adapter.wrap(model).eval(), adapter, model, example, path, metadata)
            runner = writer.load(path, adapter, lambda: task.build_model(run.cfg, run.data))
            worst, batches = verify(runner, adapter, model)
            if not worst <= ATOL:
                raise ExportError(
                    f"{run_dir}: the {fmt} export{'' if name == 'model' else ' of ' + name} "
                    f"differs from the PyTorch model by {worst:.3g} (> {ATOL}); not kept"
                )
            verified = {"batches": batches, "max_abs_diff": worst, "atol": ATOL}
            parts[name] = {"file": path.name, **specs[name], "verified": verified}
    except ExportError:
        _remove(written)
        raise
    except Exception as err:  # noqa: BLE001 - the exporter's own failures, in one line
        _remove(written)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{run_dir}: {fmt} export failed ({first})") from err
    if len(graphs) == 1:
        manifest.update(parts["model"])
    else:
        manifest["files"] = sorted({part["file"] for part in parts.values()})
        manifest["parts"] = parts
        manifest["verified"] = {
            "batches": sum(part["verified"]["batches"] for part in parts.values()),
            "max_abs_diff": max(part["verified"]["max_abs_diff"] for part in parts.values()),
            "atol": ATOL,
        }
    files = RunDir(run.run_dir)
    sides = [files.side_vocab("*").name, files.subword_model("*").name]  # translation's
    vocabularies = [v for v in files.vocabularies if v.is_file()]
    vocabularies += sorted(v for pattern in sides for v in run.run_dir.glob(pattern))
    for vocabulary in vocabularies:
        shutil.copyfile(vocabulary, out_dir / vocabulary.name)
    manifest["vocabularies"] = sorted(v.name for v in vocabularies)
    atomic_write_text(out_dir / "model.json", json.dumps(manifest, indent=2) + "\n")
    manifest["path"] = str(written[0]) if len(graphs) == 1 else str(out_dir)
    return manifest


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
