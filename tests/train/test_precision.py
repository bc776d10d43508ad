"""Mixed precision: bf16 autocast trains on the CPU; fp16 (CUDA only) uses a gradient
scaler, and clipping sees the unscaled gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.contract import LossOutput
from seqlab.errors import ConfigError
from seqlab.train.trainer import Trainer, seed_everything


class Net(nn.Module):
    """A classifier that records the dtype its hidden layer computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(8, 32)
        self.out = nn.Linear(32, 3)
        self.seen: set[torch.dtype] = set()

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        x, y = batch
        h = self.hidden(x)
        self.seen.add(h.dtype)
        return LossOutput(nn.functional.cross_entropy(self.out(torch.tanh(h)), y), len(y))


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = data()
    order = torch.randperm(96, generator=torch.Generator().manual_seed(epoch))
    return [(x[order[i : i + 16]], y[order[i : i + 16]]) for i in range(0, 96, 16)]


def evaluate(model: nn.Module) -> dict[str, float]:
    x, y = (t.to(model.out.weight.device) for t in data())  # type: ignore[union-attr]
    logits = model.out(torch.tanh(model.hidden(x)))  # type: ignore[operator]
    return {"val_loss": float(nn.functional.cross_entropy(logits, y))}


def make_cfg(**trainer: Any) -> ExperimentConfig:
    return ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=OptimConfig(name="adam", lr=0.01),
        trainer=TrainerConfig(**({"epochs": 6, "progress": False} | trainer)),
        eval=EvalConfig(metric="val_loss"),
    )


needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="fp16 autocast needs a CUDA device"
)


def fit(run_dir: Path, cfg: ExperimentConfig) -> tuple[Trainer, Net]:
    seed_everything(1)
    model = Net().to(cfg.trainer.device)
    trainer = Trainer(model, cfg, run_dir, evaluate)
    trainer.fit(batches)
    return trainer, model


def test_bf16_trains_on_the_cpu(tmp_path: Path) -> None:
    trainer, model = fit(tmp_path / "bf16", make_cfg(precision="bf16"))
    assert model.seen == {torch.bfloat16}  # the forward pass ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    losses = [r["train_loss"] for r in trainer.state.history]
    assert losses[-1] < 0.7 * losses[0]
    _, fp32 = fit(tmp_path / "fp32", make_cfg())
    assert fp32.seen == {torch.float32}


@needs_cuda
def test_fp16_scales_the_loss_and_clips_unscaled_gradients(tmp_path: Path) -> None:
    """One SGD step with clip_norm c moves the weights by exactly lr * c when the gradient
    is unscaled before clipping (by lr * c / 65536 if it were clipped while scaled)."""
    cfg = make_cfg(precision="fp16", device="cuda", clip_norm=1e-3, max_steps=1).replace(
        optim=OptimConfig(name="sgd", lr=1.0)
    )
    seed_everything(1)
    model = Net().cuda()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    trainer = Trainer(model, cfg, tmp_path, evaluate)
    trainer.fit(batches)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert model.seen == {torch.float16}
    assert trainer.scaler is not None and trainer.scaler.get_scale() == 2.0**16
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-3)


@needs_cuda
def test_fp16_resume_restores_the_scaler(tmp_path: Path) -> None:
    fp16: dict[str, Any] = {"precision": "fp16", "device": "cuda", "epochs": 2}
    full, _ = fit(tmp_path / "full", make_cfg(**fp16))
    part = tmp_path / "part"
    fit(part, make_cfg(**fp16, max_steps=5))
    seed_everything(1)
    resumed = Trainer(Net().cuda(), make_cfg(**fp16), part, evaluate)
    resumed.fit(batches, resume=True)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert full.scaler is not None and resumed.scaler is not None
    assert full.scaler.state_dict() == resumed.scaler.state_dict()


def test_precision_is_checked() -> None:
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device .* use trainer.precision=bf16"):
        TrainerConfig(precision="fp16", device="cpu").validate()
    TrainerConfig(precision="fp16", device="cuda:1").validate()
    with pytest.raises(ConfigError, match="is not one of"):
        from seqlab.config import build_dataclass

        build_dataclass(TrainerConfig, {"precision": "fp8"}, "trainer")


def test_bf16_carries_the_lm_state_across_windows(tmp_path: Path) -> None:
    """A BPTT language model carries its state from one window to the next; under autocast
    that state comes out in bf16 and must go back in."""
    from seqlab.models.rnn_lm import RNNLM, LMBatch, RNNLMConfig

    seed_everything(1)
    model = RNNLM(11, RNNLMConfig(cell="lstm", embedding_size=8, hidden_size=16, num_layers=2))
    stream = torch.randint(0, 11, (4, 61), generator=torch.Generator().manual_seed(0))

    def windows(epoch: int) -> list[LMBatch]:
        return [
            LMBatch(stream[:, t : t + 10], stream[:, t + 1 : t + 11], reset=t == 0)
            for t in range(0, 50, 10)
        ]

    def lm_evaluate(m: nn.Module) -> dict[str, float]:
        return {"val_loss": float(m.loss(windows(0)[0]).loss)}  # type: ignore[operator]

    cfg = make_cfg(precision="bf16", epochs=3)
    trainer = Trainer(model, cfg, tmp_path, lm_evaluate)
    trainer.fit(windows)
    assert trainer.state.step == 15
    assert trainer.state.history[-1]["train_loss"] < trainer.state.history[0]["train_loss"]


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """Emulated bf16 is several times slower than fp32 (ptb_small on an AVX2 CPU: 77 vs 365
    tokens/s): the trainer says so, and only where the CPU lacks it."""
    from rich.console import Console

    from seqlab.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: native)
    console = Console(record=True, width=200)
    Trainer(Net(), make_cfg(precision="bf16"), tmp_path, evaluate, console=console)
    said = "no native bf16" in console.export_text()
    assert said is not native
    console = Console(record=True, width=200)
    Trainer(Net(), make_cfg(), tmp_path / "fp32", evaluate, console=console)
    assert "bf16" not in console.export_text()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    from rich.console import Console

    from seqlab.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: native)
    console = Console(record=True, width=200)
    seed_everything(1)
    model = Net()
    trainer = Trainer(
        model, make_cfg(precision="auto", epochs=1), tmp_path, evaluate, console=console
    )
    trainer.fit(batches)
    chosen = "bf16" if native else "fp32"
    assert trainer.precision == chosen
    assert model.seen == {torch.bfloat16 if native else torch.float32}
    assert f"trainer.precision=auto: {chosen} on this cpu" in console.export_text()
    assert "no native bf16" not in console.export_text()  # auto never picks emulated bf16
