"""Cells: the modules against torch's cells, the sequence kernels against the modules and
against gradcheck (float64)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.nn.bptt import gru_sequence, lstm_sequence, peephole_lstm_sequence, rnn_sequence
from seqlab.nn.cells import GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "peephole_lstm"]
T, B, E, H = 5, 4, 3, 6
BATCH_SIZES = [4, 4, 3, 2, 1]  # lengths 5, 4, 3, 2 (sorted, as the kernels expect)
LENGTHS = [5, 4, 3, 2]


def make_cell(name: str) -> nn.Module:
    torch.manual_seed(0)
    cell: nn.Module
    if name.startswith("rnn"):
        cell = RNNCell(E, H, nonlinearity="relu" if name == "rnn_relu" else "tanh")
    elif name == "gru":
        cell = GRUCell(E, H)
    elif name == "lstm":
        cell = LSTMCell(E, H)
    else:
        cell = PeepholeLSTMCell(E, H)
        with torch.no_grad():  # make the peepholes matter
            for weight in (cell.weight_ci, cell.weight_cf, cell.weight_co):
                weight.uniform_(-1, 1)
    return cell.double()


def kernel(
    name: str, weights: Mapping[str, Tensor], x: Tensor, h0: Tensor, c0: Tensor, tap: Tensor | None
):
    """Run the sequence kernel of ``name`` with a cell's weights -> (h (T,B,H), c or None)."""
    w_ih, w_hh, b_ih, b_hh = (weights[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    if name == "gru":
        return gru_sequence(F.linear(x, w_ih, b_ih), w_hh, b_hh, h0, BATCH_SIZES, tap), None
    gx = F.linear(x, w_ih, b_ih + b_hh)
    if name.startswith("rnn"):
        act = "relu" if name == "rnn_relu" else "tanh"
        return rnn_sequence(gx, w_hh, h0, BATCH_SIZES, act, tap), None
    if name == "lstm":
        return lstm_sequence(gx, w_hh, h0, c0, BATCH_SIZES, tap)
    peepholes = (weights["weight_ci"], weights["weight_cf"], weights["weight_co"])
    return peephole_lstm_sequence(gx, w_hh, peepholes, h0, c0, BATCH_SIZES, tap)


def stepped(name: str, cell: nn.Module, x: Tensor, h0: Tensor, c0: Tensor):
    """The reference: the cell module stepped through each sequence up to its length."""
    hidden = torch.zeros(T, B, H, dtype=x.dtype)
    cells = torch.zeros(T, B, H, dtype=x.dtype)
    hs, cs = [], []
    for b, length in enumerate(LENGTHS):
        state = (h0[b : b + 1], c0[b : b + 1]) if "lstm" in name else h0[b : b + 1]
        h_col, c_col = [], []
        for t in range(length):
            state = cell(x[t, b : b + 1], state)
            h_col.append(state[0][0] if isinstance(state, tuple) else state[0])
            if isinstance(state, tuple):
                c_col.append(state[1][0])
        hs.append(torch.stack(h_col))
        cs.append(torch.stack(c_col) if c_col else None)
    for b, length in enumerate(LENGTHS):
        hidden[:length, b] = hs[b]
        if cs[b] is not None:
            cells[:length, b] = cs[b]
    return hidden, (cells if "lstm" in name else None)


def inputs() -> tuple[Tensor, Tensor, Tensor]:
    torch.manual_seed(1)
    x = torch.randn(T, B, E, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    return x, h0, c0


@pytest.mark.parametrize("name", CELLS)
def test_kernel_matches_stepping_the_cell(name: str) -> None:
    cell = make_cell(name)
    x, h0, c0 = inputs()
    expected = stepped(name, cell, x, h0, c0)
    got = kernel(name, dict(cell.named_parameters()), x, h0, c0, None)
    weights = torch.randn(T, B, H, dtype=torch.float64)
    grads = []
    for hidden, cells in (expected, got):
        loss = (hidden * weights).sum() + (0 if cells is None else cells.pow(2).sum())
        grads.append(torch.autograd.grad(loss, [x, h0, c0, *cell.parameters()], allow_unused=True))
        torch.testing.assert_close(hidden, expected[0], atol=1e-12, rtol=0)
        if cells is not None:
            torch.testing.assert_close(cells, expected[1], atol=1e-12, rtol=0)
    for want, have in zip(*grads, strict=True):
        if want is None:
            assert have is None or not have.any()
        else:
            torch.testing.assert_close(have, want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_kernel_gradcheck_with_tap(name: str) -> None:
    cell = make_cell(name)
    x, h0, c0 = inputs()
    tap = (0.1 * torch.randn(T, B, H, dtype=torch.float64)).requires_grad_()
    names = [n for n, _ in cell.named_parameters()]

    def run(x: Tensor, h0: Tensor, c0: Tensor, tap: Tensor, *weights: Tensor):
        named = dict(zip(names, weights, strict=True))
        hidden, cells = kernel(name, named, x, h0, c0, tap)
        return hidden if cells is None else (hidden, cells)

    assert torch.autograd.gradcheck(run, (x, h0, c0, tap, *cell.parameters()))


@pytest.mark.parametrize("name", CELLS)
def test_cell_gradcheck(name: str) -> None:
    cell = make_cell(name)
    x, h0, c0 = inputs()
    state = (h0, c0) if "lstm" in name else h0
    assert torch.autograd.gradcheck(lambda x: cell(x, state), (x[0],))
    names = [n for n, _ in cell.named_parameters()]

    def by_weights(*weights: Tensor):
        return torch.func.functional_call(
            cell, dict(zip(names, weights, strict=True)), (x[0], state)
        )

    assert torch.autograd.gradcheck(by_weights, tuple(cell.parameters()))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (RNNCell(E, H), nn.RNNCell(E, H)),
        (RNNCell(E, H, nonlinearity="relu"), nn.RNNCell(E, H, nonlinearity="relu")),
        (GRUCell(E, H), nn.GRUCell(E, H)),
        (LSTMCell(E, H), nn.LSTMCell(E, H)),
    ],
)
def test_cells_equal_torch_cells_with_the_same_weights(ours: nn.Module, theirs: nn.Module) -> None:
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, E)
    state = (torch.randn(B, H), torch.randn(B, H)) if isinstance(ours, LSTMCell) else None
    torch.testing.assert_close(ours(x, state), theirs(x, state), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=0)


def test_peephole_cell_with_zero_peepholes_is_an_lstm_cell() -> None:
    peephole, lstm = PeepholeLSTMCell(E, H), LSTMCell(E, H)
    lstm.load_state_dict({k: v for k, v in peephole.state_dict().items() if "_c" not in k})
    with torch.no_grad():
        for weight in (peephole.weight_ci, peephole.weight_cf, peephole.weight_co):
            weight.zero_()
    x, state = torch.randn(B, E), (torch.randn(B, H), torch.randn(B, H))
    for a, b in zip(peephole(x, state), lstm(x, state), strict=True):
        torch.testing.assert_close(a, b)


def test_peepholes_read_the_cell_state() -> None:
    cell = PeepholeLSTMCell(E, H)
    x, h = torch.randn(B, E), torch.zeros(B, H)
    h_a, _ = cell(x, (h, torch.zeros(B, H)))
    h_b, _ = cell(x, (h, torch.ones(B, H)))
    assert not torch.allclose(h_a, h_b)
    h_a.sum().backward()
    for weight in (cell.weight_ci, cell.weight_cf, cell.weight_co):
        assert weight.grad is not None
    assert cell.weight_co.grad.abs().sum() > 0  # c_t feeds o_t even when c_{t-1} = 0
    assert cell.weight_ci.grad.abs().sum() == 0  # c_{t-1} = 0 here


@pytest.mark.parametrize("cls", [LSTMCell, PeepholeLSTMCell])
def test_forget_bias_sets_the_total_forget_gate_bias(cls: type[LSTMCell]) -> None:
    cell = cls(E, H, forget_bias=1.0)
    total = cell.bias_ih + cell.bias_hh
    assert torch.equal(total[H : 2 * H], torch.ones(H))
    assert not torch.equal(total[:H], torch.zeros(H))  # the other gates stay random


@pytest.mark.parametrize("cls", [LSTMCell, PeepholeLSTMCell])
def test_chrono_init_spreads_the_forget_gate_time_scales(cls: type[LSTMCell]) -> None:
    torch.manual_seed(0)
    cell = cls(E, 200, chrono_init=50)
    total = cell.bias_ih + cell.bias_hh
    b_i, b_f = total[:200], total[200:400]
    torch.testing.assert_close(b_i, -b_f)
    time_scales = b_f.exp()  # u ~ U(1, T_max - 1)
    assert time_scales.min() >= 1 and time_scales.max() <= 49
    assert time_scales.max() > 40 and time_scales.min() < 3
    with pytest.raises(ValueError, match="not both"):
        cls(E, H, forget_bias=1.0, chrono_init=50)
    with pytest.raises(ValueError, match="bias=True"):
        cls(E, H, bias=False, chrono_init=50)


def test_bptt_clip_bounds_the_tapped_gradient() -> None:
    torch.manual_seed(0)
    w_hh = 3.0 * torch.linalg.qr(torch.randn(H, H))[0]  # exploding
    gx = 0.01 * torch.randn(T, B, H)
    h0 = torch.zeros(B, H)
    sizes = [B] * T
    for clip in (None, ("value", 0.5), ("norm", 0.5)):
        tap = torch.zeros(T, B, H, requires_grad=True)
        out = rnn_sequence(gx, w_hh, h0, sizes, "tanh", tap, clip)  # type: ignore[arg-type]
        (grad,) = torch.autograd.grad(out[-1].sum(), tap)
        if clip is None:
            assert grad[0].abs().max() > 10
        elif clip[0] == "value":
            assert grad.abs().max() <= 0.5 + 1e-6
        else:
            assert grad.norm(dim=2).max() <= 0.5 + 1e-6


def test_cells_reject_bad_inputs() -> None:
    cell = LSTMCell(E, H)
    with pytest.raises(ValueError, match=r"input of shape \(B, 3\)"):
        cell(torch.randn(B, E + 1))
    with pytest.raises(ValueError, match="dtype"):
        cell(torch.randn(B, E, dtype=torch.float64))
    with pytest.raises(ValueError, match="state of shape"):
        cell(torch.randn(B, E), (torch.randn(B + 1, H), torch.randn(B + 1, H)))
    with pytest.raises(ValueError, match=r"tuple \(h, c\)"):
        cell(torch.randn(B, E), torch.randn(B, H))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(E, H, nonlinearity="sigmoid")  # type: ignore[arg-type]
