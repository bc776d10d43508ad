"""`seqlab demo` end to end on a tiny budget: both models train, the table, the sample and
the next commands are printed, and the JSON line carries the numbers."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from seqlab.cli import app


def test_demo_runs_and_reports_both_models(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--out",
            str(out),
            "--set",
            "trainer.max_steps=30",
            "--set",
            "model.hidden_size=32",
            "--set",
            "trainer.eval_every=15",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert payload["steps"] == 30
    assert 0 < payload["baseline_val_bpc"] < 3.0  # KN5 on characters: ~2.3 bits/char
    assert 0 < payload["val_bpc"] < 6.1  # below uniform over ~65 characters (6.02)
    assert payload["sample"].startswith("ROMEO:")
    for text in ("5-gram Kneser-Ney", "seqlab generate", "seqlab plot"):
        assert text in result.output
    assert (out / "best.safetensors").exists() and (tmp_path / "demo_kn5").is_dir()
