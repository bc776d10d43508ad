"""Task ``tree_sentiment`` end to end on tiny files: tree models on SST-style trees, the RAE
on MR-style sentences with folds; metrics at the root and over all phrases; predict; plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.readers import parse_tree
from seqlab.models.tree import IGNORE, NodePredictions
from seqlab.nn.tree import build_structure
from seqlab.tasks import TASKS
from seqlab.tasks.tree_sentiment import TreeSentimentTask, node_counts, relabel

runner = CliRunner()
POS = ["(4 (3 (2 a) (3 joy)) (2 .))", "(3 (2 great) (3 fun))", "(4 (2 so) (4 (3 funny) (2 !)))"]
NEG = ["(0 (1 (2 a) (1 mess)) (2 .))", "(1 (2 so) (1 dull))", "(0 (2 dull) (0 (1 bad) (2 !)))"]
NEUTRAL = ["(2 (2 a) (2 film))"]


@pytest.fixture(autouse=True)
def register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS._items, "tree_sentiment", TreeSentimentTask())


def last_json(output: str) -> dict[str, float]:
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def write_data(root: Path) -> None:
    (root / "sst").mkdir(parents=True)
    trees = "\n".join(POS + NEG + NEUTRAL) + "\n"
    (root / "sst" / "train.txt").write_text(trees * 4, encoding="utf-8")
    for split in ("dev", "test"):
        (root / "sst" / f"{split}.txt").write_text(trees, encoding="utf-8")
    (root / "rt_polarity").mkdir()
    pos = [" ".join(parse_tree(t).leaves()) for t in POS] + ["lovely and warm", "a delight"]
    neg = [" ".join(parse_tree(t).leaves()) for t in NEG] + ["boring and cold", "a chore"]
    (root / "rt_polarity" / "rt-polarity.pos").write_text("\n".join(pos * 8) + "\n")
    (root / "rt_polarity" / "rt-polarity.neg").write_text("\n".join(neg * 8) + "\n")


def write_config(
    tmp_path: Path, model: dict[str, object], data: dict[str, object], epochs: int = 8
) -> Path:
    cfg = {
        "task": "tree_sentiment",
        "data": data,
        "model": model,
        "optim": {"name": "adam", "lr": 0.05},
        "trainer": {"epochs": epochs, "batch_size": 4, "progress": False},
        "eval": {"metric": "val_loss", "mode": "min", "folds": data.pop("folds", 1)},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_rntn_on_trees_metrics_predict_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_data(tmp_path / "data")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "data"))
    model = {"name": "rntn", "embedding_size": 8, "hidden_size": 8}
    cfg = write_config(tmp_path, model, {"dataset": "sst", "labels": "fine"})
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(cfg), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    for key in ("root_fine", "all_fine", "root_binary", "all_binary"):
        assert 0.0 <= metrics[f"test_{key}_acc"] <= 100.0
    assert metrics["test_acc"] == metrics["test_root_fine_acc"]
    assert metrics["test_root_binary_acc"] == 100.0  # the training trees themselves
    source = tmp_path / "in.txt"
    source.write_text("(2 (2 so) (2 (2 funny) (2 !)))\n(2 (2 a) (2 mess))\n")
    result = runner.invoke(app, ["predict", str(run), str(source)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        "very positive",
        "negative",
    ]  # as in training
    assert parse_tree(lines[0].split("\t")[2]).leaves() == ["so", "funny", "!"]
    source.write_text("so funny !\n")
    result = runner.invoke(app, ["predict", str(run), str(source)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "reads parse trees" in result.output
    out = tmp_path / "tree.png"
    text = "(2 (2 so) (2 (2 funny) (2 !)))"
    result = runner.invoke(
        app, ["plot", str(run), "--kind", "tree", "--text", text, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rae_on_mr_folds_predict_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_data(tmp_path / "data")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "data"))
    model = {"name": "rae", "embedding_size": 8, "embedding_init": 0.5}
    data = {"dataset": "rt_polarity", "labels": "binary", "encoding": "utf-8", "folds": 2}
    run = tmp_path / "run"
    cfg = write_config(tmp_path, model, data, epochs=10)
    result = runner.invoke(app, ["train", str(cfg), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    assert metrics["folds"] == 2 and metrics["test_acc"] >= 75.0
    assert "test_all_binary_acc" not in metrics  # the RAE predicts at the root only
    source = tmp_path / "in.txt"
    source.write_text("so funny !\n")
    result = runner.invoke(app, ["predict", str(run), str(source)])
    assert result.exit_code == 0, result.output
    label, probability, tree = result.output.strip().split("\t")
    assert label == "positive" and float(probability) > 0.5
    assert parse_tree(tree, binary=True).leaves() == ["so", "funny", "!"]
    out = tmp_path / "rae.svg"
    result = runner.invoke(
        app, ["plot", str(run), "--kind", "tree", "--text", "so funny !", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text()


def test_node_counts_root_and_phrases_fine_and_binary():
    # one tree: leaves a (gold 1), b (gold 2), root (gold 4)
    structure, _ = build_structure([[0, 1, (0, 1)]])
    probs = torch.tensor(
        [
            [0.1, 0.5, 0.1, 0.2, 0.1],  # a: fine 1 (right), binary neg (right)
            [0.0, 0.0, 0.1, 0.9, 0.0],  # b: fine 3 (wrong), neutral: no binary
            [0.3, 0.0, 0.0, 0.3, 0.4],  # root: fine 4 (right), binary .3 vs .7 pos (right)
        ]
    )
    counts = node_counts(NodePredictions(structure, probs, torch.tensor([1, 2, 4])))
    assert counts["root_fine_n"] == 1 and counts["root_fine_correct"] == 1
    assert counts["all_fine_n"] == 3 and counts["all_fine_correct"] == 2
    assert counts["all_binary_n"] == 2 and counts["all_binary_correct"] == 2
    binary = node_counts(NodePredictions(structure, probs[:, :2], torch.tensor([1, IGNORE, 1])))
    assert binary["all_binary_n"] == 2 and binary["all_binary_correct"] == 1
    assert binary["root_binary_n"] == 1 and binary["root_binary_correct"] == 0


def test_relabel_binary():
    tree = relabel(parse_tree("(3 (2 a) (1 (0 b) (4 c)))"), "binary")
    assert [p.label for p in tree.phrases()] == [1, IGNORE, 0, 0, 1]


REPO = Path(__file__).resolve().parents[2]


def test_configs_load_and_real_sst_binary_splits(shared_data: Path, tmp_path: Path):
    from seqlab.loader import load_config

    for name, model in (("sst_rntn", "rntn"), ("sst_treelstm", "treelstm"), ("mr_rae", "rae")):
        cfg = load_config(REPO / "configs" / f"{name}.yaml")
        assert cfg.task == "tree_sentiment" and cfg.model.name == model
    cfg = load_config(REPO / "configs" / "sst_rntn.yaml", ["data.labels=binary"])
    data = TreeSentimentTask().setup(cfg, tmp_path, train=True)
    # SST-2 sentence counts: sentences with a neutral root are left out
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [6920, 872, 1821]
    assert data.labels == ["negative", "positive"]


def test_eval_set_overrides_an_evaluation_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`seqlab eval RUN --set data.eval_batch_size=1`: one tree a batch, the same scores."""
    write_data(tmp_path / "data")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "data"))
    model = {"name": "rntn", "embedding_size": 8, "hidden_size": 8}
    cfg = write_config(tmp_path, model, {"dataset": "sst", "labels": "fine"}, epochs=2)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(cfg), "--out", str(run)]).exit_code == 0
    plain = runner.invoke(app, ["eval", str(run), "--json"])
    result = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=1", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output) == pytest.approx(last_json(plain.output), rel=1e-6)
    bad = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=0"])
    assert bad.exit_code == 2 and "eval_batch_size" in bad.output


def test_rae_refit_classifier_is_fitted_at_each_evaluation_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_data(tmp_path / "data")
    monkeypatch.setenv("SEQLAB_DATA", str(tmp_path / "data"))
    model = {"name": "rae", "embedding_size": 8, "embedding_init": 0.5, "classifier": "refit"}
    data = {"dataset": "rt_polarity", "labels": "binary", "encoding": "utf-8"}
    run = tmp_path / "run"
    cfg = write_config(tmp_path, model, data, epochs=4)
    result = runner.invoke(app, ["train", str(cfg), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    # the sentence classifier never gets a gradient, so only the refit can make it right
    assert last_json(result.output)["val_acc"] >= 75.0
    result = runner.invoke(app, ["eval", str(run), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["val_acc"] >= 75.0  # the kept weights hold the refit
