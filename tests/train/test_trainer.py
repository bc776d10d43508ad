from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from torch import nn

from seqlab.config import EvalConfig, ExperimentConfig, OptimConfig, TrainerConfig
from seqlab.contract import LossOutput
from seqlab.errors import ConfigError, TrainingError
from seqlab.rundir import RunDir
from seqlab.train.checkpoint import load_weights
from seqlab.train.trainer import Trainer, seed_everything


class Toy(nn.Module):
    """A regression net with dropout, so resume must restore the RNG to match."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 1))

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> LossOutput:
        x, y = batch
        return LossOutput(nn.functional.mse_loss(self.net(x).squeeze(-1), y), len(y))


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return x, x.sum(-1).sin()


def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = data()
    order = torch.randperm(64, generator=torch.Generator().manual_seed(epoch))
    return [(x[order[i : i + 8]], y[order[i : i + 8]]) for i in range(0, 64, 8)]


def evaluate(model: nn.Module) -> dict[str, float]:
    x, y = data()
    with torch.no_grad():
        return {"val_loss": float(nn.functional.mse_loss(model.net(x).squeeze(-1), y))}


def make_cfg(**trainer: Any) -> ExperimentConfig:
    optim = OptimConfig(
        name="sgd", lr=0.1, momentum=0.9, schedule="epoch_decay", gamma=0.5, decay_start=2
    )
    return ExperimentConfig(
        task="toy",
        data=None,
        model=None,
        optim=optim,
        trainer=TrainerConfig(**({"epochs": 4, "progress": False} | trainer)),
        eval=EvalConfig(metric="val_loss", mode="min"),
    )


def run(run_dir: Path, cfg: ExperimentConfig, resume: bool = False) -> Trainer:
    seed_everything(1)
    model = Toy()
    trainer = Trainer(model, cfg, run_dir, evaluate)
    trainer.fit(batches, resume=resume)
    return trainer


def test_resume_continues_to_identical_numbers(tmp_path: Path) -> None:
    full = run(tmp_path / "full", make_cfg())
    # Interrupt after 13 steps (mid-epoch 2, with a step checkpoint), then resume.
    part_dir = tmp_path / "part"
    run(part_dir, make_cfg(max_steps=13, checkpoint_every=1))
    resumed = run(part_dir, make_cfg(), resume=True)
    assert resumed.state.step == full.state.step == 32
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert resumed.schedule.lr == full.schedule.lr == pytest.approx(0.1 * 0.5**3)
    full_log = [json.loads(x) for x in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    part_log = [json.loads(x) for x in (part_dir / "metrics.jsonl").read_text().splitlines()]
    assert full_log[-1]["val_loss"] == part_log[-1]["val_loss"]


def test_best_weights_are_the_best_evaluation(tmp_path: Path) -> None:
    trainer = run(tmp_path, make_cfg())
    best = min(r["val_loss"] for r in trainer.state.history)
    model = Toy()
    load_weights(RunDir(tmp_path).best_weights, model)
    model.eval()
    assert evaluate(model)["val_loss"] == pytest.approx(best, rel=1e-6)


def test_ema_weights_follow_the_formula_and_are_what_is_evaluated(tmp_path: Path) -> None:
    decay = 0.9
    seed_everything(1)
    model = Toy()
    trainer = Trainer(model, make_cfg(epochs=1, ema_decay=decay), tmp_path, evaluate)
    expected: list[torch.Tensor] | None = None
    for batch in batches(0):
        trainer._train_step([batch])
        now = [p.detach().clone() for p in model.parameters()]
        # the first step copies the weights; later ones: avg = decay·avg + (1 − decay)·w
        expected = (
            now
            if expected is None
            else [decay * e + (1 - decay) * w for e, w in zip(expected, now, strict=True)]
        )
    assert trainer.average is not None and expected is not None
    for got, want in zip(trainer.average.module.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert not torch.equal(expected[0], model.net[0].weight)
    trainer._evaluate(0.0, 0.0)
    averaged = Toy()
    load_weights(RunDir(tmp_path).best_weights, averaged)
    averaged.eval()
    for got, want in zip(averaged.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert trainer.state.history[-1]["val_loss"] == pytest.approx(evaluate(averaged)["val_loss"])


def test_ema_resume_continues_to_identical_numbers(tmp_path: Path) -> None:
    full = run(tmp_path / "full", make_cfg(ema_decay=0.8))
    part_dir = tmp_path / "part"
    run(part_dir, make_cfg(max_steps=13, checkpoint_every=1, ema_decay=0.8))
    resumed = run(part_dir, make_cfg(ema_decay=0.8), resume=True)
    assert full.average is not None and resumed.average is not None
    for a, b in zip(full.average.parameters(), resumed.average.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    run(tmp_path / "plain", make_cfg(max_steps=2))
    with pytest.raises(ConfigError, match="without trainer.ema_decay"):
        run(tmp_path / "plain", make_cfg(ema_decay=0.8), resume=True)
    with pytest.raises(ConfigError, match=r"ema_decay must be in \[0, 1\)"):
        Trainer(Toy(), make_cfg(ema_decay=1.0), tmp_path / "bad", evaluate)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    cfg = make_cfg(epochs=3)
    run(tmp_path, make_cfg(epochs=1))
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def poisoned(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = batches(epoch)[0]
        return [(x, y * float("nan"))]

    seed_everything(1)
    trainer = Trainer(Toy(), cfg, tmp_path, evaluate)
    with pytest.raises(TrainingError, match="loss became nan at step 9"):
        trainer.fit(poisoned, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_early_stopping(tmp_path: Path) -> None:
    calls = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    cfg = make_cfg(epochs=6, early_stopping=2)
    seed_everything(1)
    trainer = Trainer(Toy(), cfg, tmp_path, lambda m: {"val_loss": next(calls)})
    trainer.fit(batches)
    assert len(trainer.state.history) == 4
    assert trainer.state.history[-1]["early_stopped"] is True
    assert trainer.state.best == 0.5


def test_log_lines_are_not_wrapped_in_a_narrow_log_file(tmp_path: Path) -> None:
    """A log file is an 80-column console to rich: every line must still be whole, so that
    ``grep val_loss`` finds the number next to the key."""
    out = io.StringIO()
    console = Console(file=out, width=30, force_terminal=False)
    seed_everything(1)
    Trainer(Toy(), make_cfg(epochs=2, log_every=4), tmp_path, evaluate, console).fit(batches)
    lines = out.getvalue().splitlines()
    evals = [line for line in lines if line.startswith("step ")]
    logs = [line for line in lines if line.startswith("epoch ")]
    assert len(evals) == 2 and len(logs) == 4
    assert all(re.search(r"val_loss \d", line) for line in evals)
    assert all(re.search(r"lr [\d.]+$", line) for line in logs)
    assert len(lines) == len(evals) + len(logs)


def test_max_steps_and_clipping(tmp_path: Path) -> None:
    cfg = make_cfg(max_steps=3, clip_norm=1e-6)
    seed_everything(1)
    model = Toy()
    start = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, cfg, tmp_path, evaluate)
    trainer.fit(batches)
    assert trainer.state.step == 3
    moved = sum(
        float((p.detach() - s).norm()) for p, s in zip(model.parameters(), start, strict=True)
    )
    assert 0 < moved < 1e-4  # momentum SGD, 3 steps of gradient norm 1e-6 and lr 0.1


def test_l1_penalty_shrinks_weights(tmp_path: Path) -> None:
    from seqlab.train.optim import penalty

    model = Toy()
    value = penalty(model, OptimConfig(l1=0.5, l2=0.2))
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    expect = sum(0.5 * w.abs().sum() + 0.1 * w.pow(2).sum() for w in weights)
    assert value is not None
    torch.testing.assert_close(value, expect)


class TwoGroups(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(5, 3)
        self.rnn = nn.LSTM(3, 3, num_layers=2)
        self.output = nn.Linear(3, 2)


def test_l2_groups_override_the_l2_of_the_groups_they_name() -> None:
    from seqlab.train.optim import l2_weights, penalty

    model = TwoGroups()
    cfg = OptimConfig(l2=0.2, l2_groups=(("embedding", 0.0), ("rnn", 0.6)))
    assert l2_weights(model, cfg) == {"embedding": 0.0, "rnn.l0": 0.6, "rnn.l1": 0.6, "output": 0.2}
    rnn = [p for n, p in model.rnn.named_parameters() if n.startswith("weight")]
    expect = 0.3 * sum(w.pow(2).sum() for w in rnn) + 0.1 * model.output.weight.pow(2).sum()
    value = penalty(model, cfg)
    assert value is not None
    torch.testing.assert_close(value, expect)
    assert penalty(model, OptimConfig(l2=0.0, l2_groups=(("output", 0.0),))) is None
    with pytest.raises(ConfigError, match=r"optim.l2_groups: 'decoder' names no layer group"):
        l2_weights(model, OptimConfig(l2_groups=(("decoder", 0.1),)))
    with pytest.raises(ConfigError, match=r"optim.l2_groups rnn must be >= 0"):
        OptimConfig(l2_groups=(("rnn", -1.0),)).validate()
    with pytest.raises(ConfigError, match="AdamW"):
        OptimConfig(name="adamw", l2_groups=(("rnn", 0.1),)).validate()


def test_sgd_groups_take_plain_sgd_steps_beside_adagrad() -> None:
    from seqlab.train.optim import build_optimizer, param_groups
    from seqlab.train.schedules import Schedule

    torch.manual_seed(0)
    model = TwoGroups()
    twin = TwoGroups()
    twin.load_state_dict(model.state_dict())
    cfg = OptimConfig(name="adagrad", lr=0.05, sgd_groups=(("embedding", 2.0),))
    opt = build_optimizer(param_groups(model, cfg), cfg)
    rest = [p for n, p in twin.named_parameters() if not n.startswith("embedding")]
    reference = torch.optim.Adagrad(rest, lr=0.05, eps=cfg.eps)

    def loss(m: TwoGroups) -> torch.Tensor:
        out, _ = m.rnn(m.embedding(torch.tensor([[1, 2], [3, 1]])))
        return m.output(out).pow(2).mean()

    for _ in range(3):
        before = model.embedding.weight.detach().clone()
        for m in (model, twin):
            m.zero_grad()
            loss(m).backward()
        grad = model.embedding.weight.grad
        assert grad is not None
        opt.step()
        torch.testing.assert_close(model.embedding.weight, before - 2.0 * grad)
        twin.embedding.weight.data -= 2.0 * twin.embedding.weight.grad  # type: ignore[operator]
        reference.step()
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=0)
    assert Schedule(opt, cfg).lr == 0.05  # the main optimizer's rate, not the SGD group's
    again = build_optimizer(param_groups(model, cfg), cfg)
    again.load_state_dict(opt.state_dict())  # a checkpoint round trip
    assert [g["lr"] for g in again.param_groups] == [g["lr"] for g in opt.param_groups]
    with pytest.raises(ConfigError, match=r"optim.sgd_groups: 'decoder' names no layer group"):
        param_groups(model, OptimConfig(sgd_groups=(("decoder", 0.1),)))
    with pytest.raises(ConfigError, match=r"optim.sgd_groups embedding must be > 0"):
        OptimConfig(sgd_groups=(("embedding", 0.0),)).validate()


def adagrad_cfg(**trainer: Any) -> ExperimentConfig:
    cfg = make_cfg(**({"epochs": 3} | trainer))
    return cfg.replace(optim=OptimConfig(name="adagrad", lr=0.1, reset_state_every=1))


def run_without_dropout(run_dir: Path, cfg: ExperimentConfig, resume: bool = False) -> nn.Module:
    seed_everything(1)
    model = Toy()
    model.net[2].p = 0.0
    Trainer(model, cfg, run_dir, evaluate).fit(batches, resume=resume)
    return model


def test_reset_state_every_epoch_restarts_adagrad(tmp_path: Path) -> None:
    trained = run_without_dropout(tmp_path / "reset", adagrad_cfg())
    seed_everything(1)
    reference = Toy()
    reference.net[2].p = 0.0
    for epoch in range(3):  # CoreNLP's RNTN training: a fresh Adagrad every epoch
        opt = torch.optim.Adagrad(reference.parameters(), lr=0.1, eps=1e-8)
        for batch in batches(epoch):
            opt.zero_grad()
            reference.loss(batch).loss.backward()
            opt.step()
    for ours, theirs in zip(trained.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    never = adagrad_cfg()
    never = never.replace(optim=dataclasses.replace(never.optim, reset_state_every=0))
    kept = run_without_dropout(tmp_path / "kept", never)
    assert not torch.allclose(kept.net[0].weight, trained.net[0].weight, atol=1e-4)
    # stopped mid-epoch 2 and resumed: the checkpoint holds the reset statistics
    run_without_dropout(tmp_path / "part", adagrad_cfg(max_steps=11, checkpoint_every=1))
    resumed = run_without_dropout(tmp_path / "part", adagrad_cfg(), resume=True)
    for a, b in zip(trained.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(ConfigError, match=r"optim.reset_state_every must be >= 0"):
        OptimConfig(reset_state_every=-1).validate()


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw"])
def test_every_optimizer_lowers_the_loss(name: str) -> None:
    from seqlab.train.optim import build_optimizer

    lr = {"sgd": 0.1, "adagrad": 0.1, "adadelta": 1.0}.get(name, 0.01)
    torch.manual_seed(0)
    model = Toy().eval()
    opt = build_optimizer(model.parameters(), OptimConfig(name=name, lr=lr))  # type: ignore[arg-type]
    x, y = data()
    before = float(model.loss((x, y)).loss.detach())
    for _ in range(50):
        opt.zero_grad()
        model.loss((x, y)).loss.backward()
        opt.step()
    assert float(model.loss((x, y)).loss.detach()) < 0.9 * before


def test_python_built_optim_config_is_validated(tmp_path: Path) -> None:
    cfg = make_cfg()
    cfg = cfg.replace(optim=dataclasses.replace(cfg.optim, lr=-5.0))
    with pytest.raises(ConfigError, match=r"optim.lr must be > 0, got -5.0"):
        Trainer(Toy(), cfg, tmp_path, evaluate)


def test_piecewise_schedule_sets_each_epochs_lr(tmp_path: Path) -> None:
    optim = OptimConfig(
        name="sgd", lr=0.5, schedule="piecewise", lr_epochs=((0, 0.5), (2, 1.0), (3, 0.25))
    )
    cfg = make_cfg(epochs=5).replace(optim=optim)
    seed_everything(1)
    trainer = Trainer(Toy(), cfg, tmp_path, evaluate)
    trainer.fit(batches)
    # the lr logged at each evaluation is the next epoch's (the schedule steps first)
    assert [h["lr"] for h in trainer.state.history] == [0.5, 1.0, 0.25, 0.25, 0.25]
    with pytest.raises(ConfigError, match="optim.lr_epochs must start at epoch 0"):
        OptimConfig(schedule="piecewise", lr_epochs=((1, 0.1),)).validate()
