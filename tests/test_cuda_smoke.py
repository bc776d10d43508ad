"""CUDA smoke test: every task's smallest config trains (3 steps), evaluates, generates
and predicts on the GPU through the CLI. Skipped, with the reason, where no GPU is
visible; run it on a GPU machine with ``pytest tests/test_cuda_smoke.py -rs``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seqlab.cli import app

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device is visible: the CUDA smoke test (train/eval/generate/predict "
    "with trainer.device=cuda for every task) runs only on a GPU machine",
)

runner = CliRunner()

# config, extra overrides, the split to evaluate, a predict input (None: the task has no
# predict), generate?
CASES = {
    "lm_rnn": ("shakespeare_char_demo", ["trainer.max_minutes=null"], "val", None, True),
    "lm_rnn bf16": (
        "shakespeare_char_demo",
        ["trainer.max_minutes=null", "trainer.precision=bf16", "trainer.accumulate=2"],
        "val",
        None,
        True,
    ),
    "lm_rnn fp16": (
        "shakespeare_char_demo",
        ["trainer.max_minutes=null", "trainer.precision=fp16", "trainer.clip_norm=1.0"],
        "val",
        None,
        True,
    ),
    "lm_char_mlp": ("shakespeare_char_mlp", [], "val", None, True),
    "lm_ngram": ("shakespeare_char_kn", [], "val", None, True),
    "tagging": ("ewt_upos", [], "val", "The cat sat on the mat .\n", False),
    "classify": ("mr_cnn_rand", [], "val", "a warm and funny film\n", False),
    "bow_classify": ("mr_bow_logreg", [], "val", "a warm and funny film\n", False),
    "ae_bow": ("ae_dense", [], "val", None, False),
    "ae_bow stacked": ("ae_stacked", ["model.pretrain_epochs=1"], "val", None, False),
    "word2vec": ("w2v_ptb", ["trainer.epochs=1"], "test", "the\n", False),
}


def invoke(args: list[str], stdin: str | None = None) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_task_runs_on_cuda(case: str, tmp_path: Path, shared_data: Path) -> None:
    config, extra, split, predict_input, generates = CASES[case]
    run_dir = tmp_path / "run"
    sets = ["trainer.device=cuda", "trainer.max_steps=3", "trainer.progress=false", *extra]
    args = ["train", str(REPO / "configs" / f"{config}.yaml"), "--out", str(run_dir)]
    for item in sets:
        args += ["--set", item]
    metrics = invoke(args)
    assert metrics, "train reported no metrics"
    assert invoke(["eval", str(run_dir), "--split", split])
    if generates:
        text = invoke(["generate", str(run_dir), "--prompt", "Th", "--max-tokens", "20"])
        assert str(text["text"]).startswith("Th")
        if config.startswith("shakespeare_char_demo"):
            beam = invoke(["generate", str(run_dir), "--prompt", "Th", "--beam", "3"])
            assert str(beam["text"]).startswith("Th")
    if predict_input is not None:
        source = tmp_path / "input.txt"
        source.write_text(predict_input, encoding="utf-8")
        assert invoke(["predict", str(run_dir), str(source)])["predictions"]
