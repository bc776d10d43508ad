"""Task ``speech`` end to end on a small synthetic FSDD (one tone per digit): CLI train,
eval, predict on wav files of other rates and channel counts, plot --kind attention, and
bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
import yaml
from scipy.io import wavfile
from scipy.signal import resample_poly
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.audio import read_wav
from seqlab.evaluation import LoadedRun
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.speech import SpeechTask

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS._items, "speech", SpeechTask())


def tone(digit: int, index: int) -> np.ndarray:
    t = np.arange(800 + 40 * index) / 8000  # 0.1-0.14 s
    return (0.3 * np.sin(2 * np.pi * (300 + 300 * digit) * t) * 32767).astype(np.int16)


def write_fsdd(root: Path) -> Path:
    folder = root / "recordings"
    folder.mkdir(parents=True)
    for speaker in ("ann", "bob"):
        for digit in range(10):
            for index in range(8):
                wavfile.write(folder / f"{digit}_{speaker}_{index}.wav", 8000, tone(digit, index))
    return root


def write_config(tmp_path: Path) -> Path:
    cfg = {
        "task": "speech",
        "data": {
            "dataset": str(write_fsdd(tmp_path / "fsdd")),
            "val_indices": [5],
            "train_utterances": 64,
            "val_utterances": 12,
            "test_utterances": 12,
            "compose": {"max_digits": 3},
            "features": {"n_mels": 16},
        },
        "model": {
            "name": "las",
            "listener_hidden": 16,
            "listener_layers": 2,
            "embedding_size": 8,
            "decoder_hidden": 24,
            "attention_size": 16,
            "ctc_weight": 0.3,
        },
        "optim": {"name": "adam", "lr": 0.01},
        "trainer": {"epochs": 2, "batch_size": 16, "progress": False},
        "eval": {"metric": "val_der", "mode": "min"},
    }
    path = tmp_path / "speech.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, float]:
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def test_train_eval_predict_plot(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    for key in ("val_der", "val_acc", "test_der", "test_acc", "test_loss"):
        assert key in metrics
    assert 0.0 <= metrics["test_acc"] <= 100.0 and metrics["test_der"] >= 0.0
    assert json.loads((run / "chars.json").read_text())[3:] == list("0123456789")
    result = runner.invoke(app, ["eval", str(run), "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["test_der"] == pytest.approx(metrics["test_der"])

    # the same audio at 8 kHz mono, at 16 kHz stereo and at 11,025 Hz: the same transcript
    audio = np.concatenate([tone(4, 6), np.zeros(800, np.int16), tone(1, 7)])
    plain, stereo, odd = tmp_path / "plain.wav", tmp_path / "stereo.wav", tmp_path / "odd.wav"
    wavfile.write(plain, 8000, audio)
    upsampled = resample_poly(audio.astype(np.float32), 2, 1).astype(np.int16)
    wavfile.write(stereo, 16000, np.stack([upsampled, upsampled], axis=1))
    wavfile.write(odd, 11025, resample_poly(audio.astype(np.float32), 441, 320).astype(np.int16))
    result = runner.invoke(app, ["predict", str(run), str(plain), str(stereo), str(odd)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert [path for _, path in rows] == [str(plain), str(stereo), str(odd)]
    assert all(text.isdigit() or text == "" for text, _ in rows)
    assert rows[0][0] == rows[1][0] == rows[2][0]
    # what the model computes from them is near equal too (the transcript alone could be
    # the same by chance after so little training)
    loaded = LoadedRun.load(run)
    task, data = cast(SpeechTask, loaded.task), loaded.data
    outputs = [
        task.alignment(loaded.cfg, loaded.model, data, read_wav(path, 8000))
        for path in (plain, stereo, odd)
    ]
    for frames, labels, weights in outputs[1:]:
        assert frames.shape == outputs[0][0].shape and labels == outputs[0][1]
        torch.testing.assert_close(frames, outputs[0][0], atol=0.35, rtol=0)
        torch.testing.assert_close(weights, outputs[0][2], atol=0.02, rtol=0)

    out = tmp_path / "align.png"
    result = runner.invoke(
        app, ["plot", str(run), "--kind", "attention", "--wav", str(stereo), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000


def test_bad_wav_input_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = write_config(tmp_path)
    result = runner.invoke(
        app, ["train", str(cfg), "--out", str(run), "--set", "trainer.max_steps=1"]
    )
    assert result.exit_code == 0, result.output
    empty, text = tmp_path / "empty.wav", tmp_path / "text.wav"
    wavfile.write(empty, 8000, np.zeros(0, np.int16))
    text.write_text("hello")
    for path, message in ((empty, "the wav file holds no samples"), (text, "not a readable wav")):
        result = runner.invoke(app, ["predict", str(run), str(path)])
        assert result.exit_code == 2
        assert f"error: {path}: {message}" in result.output
        assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["predict", str(run)])
    assert result.exit_code == 2 and "predicts for files: give their paths" in result.output


def test_config_loads_and_val_stays_off_test() -> None:
    cfg = load_config(REPO / "configs" / "fsdd_las.yaml")
    assert cfg.task == "speech" and cfg.eval.metric == "val_der"
    assert set(cfg.data.val_indices).isdisjoint(range(5))


def test_splits_and_curriculum(tmp_path: Path) -> None:
    cfg = load_config(
        write_config(tmp_path),
        ["data.curriculum=[1,2]", "data.compose.max_digits=4", "trainer.batch_size=64"],
    )
    task = SpeechTask()
    data = task.setup(cfg, tmp_path, train=True)
    assert all(r.index < 5 for u in data.splits["test"] for r in u.recordings)
    assert all(r.index == 5 for u in data.splits["val"] for r in u.recordings)
    assert {r.index for r in data.train_recordings} == {6, 7}
    assert [len(f) for f in data.features["test"]] == [
        data.logmel.frames(len(data.bank.render(u))) for u in data.splits["test"]
    ]
    longest = []
    for epoch in range(3):
        batches = list(task.train_batches(cfg, data, epoch))
        assert sum(len(b.lengths) for b in batches) == 64
        longest.append(max(int(b.targets.lengths.max()) - 1 for b in batches))  # less </s>
        again = list(task.train_batches(cfg, data, epoch))
        assert all(torch.equal(a.features, b.features) for a, b in zip(batches, again, strict=True))
    assert longest == [1, 2, 4]
