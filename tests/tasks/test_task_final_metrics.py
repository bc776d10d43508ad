"""``Task.final_metrics``: ``fit`` hands it to the Trainer and adds it for every split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from seqlab.loader import load_config
from seqlab.tasks.sentence_classify import SentenceClassifyTask

POS = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
NEG = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]


class Counted(SentenceClassifyTask):
    """The classify task with an expensive metric that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def final_metrics(self, cfg: Any, model: nn.Module, data: Any, split: str) -> dict[str, float]:
        assert not model.training
        self.calls.append(split)
        return {f"{split}_expensive": float(len(self.calls))}


def test_fit_passes_final_metrics_through(tmp_path: Path) -> None:
    data = tmp_path / "reviews.tsv"
    data.write_text("\n".join([f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]) * 4)
    raw = {
        "task": "classify",
        "data": {"dataset": str(data), "val_fraction": 0.2, "test_fraction": 0.2},
        "model": {"name": "cnn", "embedding_size": 8, "maps": 4, "widths": [1, 2]},
        "trainer": {"epochs": 4, "batch_size": 8, "progress": False},
        "eval": {"metric": "val_acc", "mode": "max", "final_every": 2},
    }
    config = tmp_path / "cls.yaml"
    config.write_text(yaml.safe_dump(raw))
    task = Counted()
    metrics = task.fit(load_config(config), tmp_path / "run")
    lines = (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    assert [json.loads(line).get("val_expensive") for line in lines] == [None, 1.0, None, 2.0]
    assert task.calls == ["val", "val", "val", "test"]  # evaluations 2 and 4, then the best
    assert metrics["val_expensive"] == 3.0 and metrics["test_expensive"] == 4.0
    assert "val_acc" in metrics and "test_acc" in metrics
