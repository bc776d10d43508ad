"""Gradient flow: the ||dL/dh_t|| matrix equals autograd on the literal cells; the PNG is
written."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from seqlab.analysis.gradient_flow import (
    gradient_flow,
    plot_gradient_flow,
    recurrent_gradient_flow,
)
from seqlab.nn.cells import GRUCell, LSTMCell, RNNCell
from seqlab.nn.recurrent import Recurrent

B, T, E, H = 3, 6, 2, 4
CELL_CLASSES = {"lstm": LSTMCell, "gru": GRUCell, "rnn_tanh": RNNCell}


def autograd_norms(rnn: Recurrent, x: Tensor) -> Tensor:
    """||dL/dh_t|| (L, T) by retain_grad on every h_t of the cells stepped by hand, with
    L = sum of the last output (both directions' h at their own step)."""
    directions = rnn.num_directions
    layer_input = x
    tapped: list[list[list[Tensor]]] = []  # [layer][direction][t]
    for layer in range(rnn.num_layers):
        outputs, per_direction = [], []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            cell = CELL_CLASSES[rnn.cell_type](layer_input.size(2), H).double()
            cell.load_state_dict({name: getattr(rnn, name + suffix) for name in cell.state_dict()})
            order = range(T - 1, -1, -1) if direction else range(T)
            state, hs = None, [torch.empty(0)] * T
            for t in order:
                state = cell(layer_input[:, t], state)
                h = state[0] if isinstance(state, tuple) else state
                h.retain_grad()
                hs[t] = h
            per_direction.append(hs)
            outputs.append(torch.stack(hs, 1))
        tapped.append(per_direction)
        layer_input = torch.cat(outputs, 2)
    layer_input[:, -1].sum().backward()
    return torch.tensor(
        [
            [sum(hs[t].grad.pow(2).sum() for hs in per_direction).sqrt() for t in range(T)]
            for per_direction in tapped
        ],
        dtype=torch.float64,
    )


@pytest.mark.parametrize(
    ("mode", "bidirectional"),
    [("lstm", False), ("gru", False), ("rnn_tanh", False), ("lstm", True)],
)
def test_matrix_matches_autograd_on_a_tiny_case(mode: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    rnn = Recurrent(mode, E, H, 2, bidirectional=bidirectional).double()  # type: ignore[arg-type]
    x = torch.randn(B, T, E, dtype=torch.float64)
    matrix = recurrent_gradient_flow(rnn, x)
    assert matrix.shape == (2, T)
    torch.testing.assert_close(matrix, autograd_norms(rnn, x), atol=1e-12, rtol=1e-10)
    assert all(p.grad is None for p in rnn.parameters())  # the model's grads are untouched


def test_elman_gradient_vanishes_faster_than_lstm_with_forget_bias() -> None:
    x = torch.randn(4, 60, E, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ratios = {}
    for mode, forget_bias in (("rnn_tanh", None), ("lstm", 3.0)):
        torch.manual_seed(0)
        rnn = Recurrent(mode, E, 16, forget_bias=forget_bias).double()  # type: ignore[arg-type]
        matrix = recurrent_gradient_flow(rnn, x)
        ratios[mode] = (matrix[0, 0] / matrix[0, -1]).item()
    assert ratios["rnn_tanh"] < 1e-8 < 1e-3 < ratios["lstm"]


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = Recurrent("gru", E, H)
        self.decoder = Recurrent("lstm", H, H, 2)

    def loss(self, x: Tensor) -> Tensor:
        encoded, _ = self.encoder(x)
        first, state = self.decoder(encoded[:, :2])  # a decoder called twice
        second, _ = self.decoder(encoded[:, 2:], state)
        return second[:, -1].pow(2).sum() + first.sum()


def test_gradient_flow_of_a_model_with_several_layers() -> None:
    torch.manual_seed(0)
    model = TwoLayers()
    x = torch.randn(B, T, E)
    flows = gradient_flow(model, lambda: model.loss(x))
    assert set(flows) == {"encoder", "decoder"}
    assert flows["encoder"].shape == (1, T)
    assert flows["decoder"].shape == (2, T)  # both calls, joined along time
    assert (flows["decoder"] > 0).all()
    assert model.encoder._taps is None and model.decoder._taps is None
    with pytest.raises(ValueError, match="no seqlab.nn.Recurrent"):
        gradient_flow(nn.Linear(2, 2), lambda: torch.zeros(()))


def test_bptt_clipping_bounds_an_exploding_gradient() -> None:
    x = torch.randn(B, 40, E, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    peaks = {}
    for clip in (None, ("norm", 1.0)):
        torch.manual_seed(0)
        rnn = Recurrent("rnn_tanh", E, 16, bptt_clip=clip).double()  # type: ignore[arg-type]
        with torch.no_grad():  # W_hh = 2 x orthogonal, small inputs: gradients explode
            rnn.weight_hh_l0.copy_(2.0 * torch.linalg.qr(torch.randn(16, 16))[0])
            rnn.weight_ih_l0.mul_(0.01)
        peaks[clip] = recurrent_gradient_flow(rnn, x).max().item()
    assert peaks[None] > 1e3
    assert peaks[("norm", 1.0)] <= B**0.5 + 1e-9  # each sequence's row clipped to norm 1


def test_plot_writes_a_png(tmp_path) -> None:
    torch.manual_seed(0)
    rnn = Recurrent("lstm", E, H, 2).double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    matrix = recurrent_gradient_flow(rnn, x)
    path = plot_gradient_flow({"lstm": matrix, "zeros": torch.zeros(1, T)}, tmp_path / "a/g.png")
    assert path == tmp_path / "a/g.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
    assert plot_gradient_flow(matrix, tmp_path / "single.png", title="one").is_file()
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_gradient_flow({}, tmp_path / "none.png")
    with pytest.raises(ValueError, match=r"\(layers, T\)"):
        plot_gradient_flow(torch.zeros(T), tmp_path / "bad.png")
