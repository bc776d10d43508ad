r"""Recurrent cells, each written from its equations.

A cell (:class:`RNNCell`, :class:`GRUCell`, :class:`LSTMCell`, :class:`PeepholeLSTMCell`)
takes one time step, ``cell(x_t, state) -> state`` like ``torch.nn.LSTMCell``. Its
``forward`` is the equations of its docstring, line by line, and autograd does the
derivatives. It is the reference: the sequence kernels of :mod:`seqlab.nn.bptt`, which
``Recurrent`` runs on its explicit path, compute the same function over T steps with
backpropagation through time written by hand, and the tests check them against these
modules.

Conventions: row vectors as in ``torch.nn`` (``x W^T``), gate order as in ``torch.nn.LSTM``
(i, f, g, o) and ``torch.nn.GRU`` (r, z, n), so weights are interchangeable with torch's.
Shapes: B batch, T time, I input features, H hidden units; ``⊙`` is the elementwise product
and ``σ`` the logistic sigmoid.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _CellBase(nn.Module):
    """Parameters and checks shared by the cells: ``weight_ih`` (G·H, I), ``weight_hh``
    (G·H, H), ``bias_ih`` and ``bias_hh`` (G·H,), with G gate blocks stacked in torch's order,
    all initialised U(-1/√H, 1/√H) as in ``torch.nn``."""

    num_gates = 1
    bias_ih: nn.Parameter | None
    bias_hh: nn.Parameter | None

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(
                f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gate_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gate_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gate_size))
            self.bias_hh = nn.Parameter(torch.empty(gate_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"

    def _check(self, input: Tensor, state: Tensor | None) -> Tensor:
        """Validate x_t (B, I) and h (B, H); return h, zeros when ``state`` is None."""
        if input.dim() != 2 or input.size(1) != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, {self.input_size}), "
                f"got {tuple(input.shape)}"
            )
        if input.dtype != self.weight_ih.dtype:
            raise ValueError(
                f"input dtype {input.dtype} does not match the weights' {self.weight_ih.dtype}"
            )
        if state is None:
            return input.new_zeros(input.size(0), self.hidden_size)
        if state.shape != (input.size(0), self.hidden_size):
            raise ValueError(
                f"{type(self).__name__} expects a state of shape "
                f"({input.size(0)}, {self.hidden_size}), got {tuple(state.shape)}"
            )
        return state


class RNNCell(_CellBase):
    r"""Elman RNN cell.

    .. code-block:: text

        h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)      act = tanh or relu

    ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih``/``bias_hh`` (H,);
    ``forward(x_t (B, I), h_{t-1} (B, H) or None) -> h_t (B, H)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h_prev = self._check(input, hx)  # (B, H)
        pre = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(
            h_prev, self.weight_hh, self.bias_hh
        )  # (B, H)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)


class GRUCell(_CellBase):
    r"""Gated recurrent unit (Cho et al., 2014), in torch's variant (r gates ``h W_hn + b_hn``).

    .. code-block:: text

        r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)            reset gate
        z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)            update gate
        n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))  candidate
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    ``weight_ih`` = [W_ir; W_iz; W_in] (3H, I), ``weight_hh`` = [W_hr; W_hz; W_hn] (3H, H),
    biases (3H,) in the same order; ``forward(x_t (B, I), h (B, H) or None) -> h_t (B, H)``.
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.reset_parameters()

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h_prev = self._check(input, hx)  # (B, H)
        x_r, x_z, x_n = F.linear(input, self.weight_ih, self.bias_ih).chunk(3, 1)  # (B, H) each
        h_r, h_z, h_n = F.linear(h_prev, self.weight_hh, self.bias_hh).chunk(3, 1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h_prev


def _check_lstm_state(
    cell: _CellBase, input: Tensor, hx: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, Tensor]:
    if hx is None:
        zeros = cell._check(input, None)
        return zeros, zeros
    if not isinstance(hx, tuple) or len(hx) != 2:
        raise ValueError(f"{type(cell).__name__} expects the state as a tuple (h, c)")
    return cell._check(input, hx[0]), cell._check(input, hx[1])


def init_gate_biases(
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
    forget_bias: float | None = None,
    chrono_init: int | None = None,
) -> None:
    """Initialise an LSTM's gate biases (blocks i, f, g, o of ``bias_ih`` and ``bias_hh``; a
    gate's bias is their sum, so ``bias_ih`` takes the value and the ``bias_hh`` block is
    zeroed). Other blocks keep their values.

    * ``forget_bias=v``: b_f = v.
    * ``chrono_init=T_max`` (Tallec & Ollivier, 2018): b_f = log u with u ~ U(1, T_max - 1)
      per unit, and b_i = -b_f, so the units' memory time scales 1/(1 - f) ≈ u spread over
      1..T_max instead of all starting near 2 steps.
    """
    if forget_bias is None and chrono_init is None:
        return
    if forget_bias is not None and chrono_init is not None:
        raise ValueError("give forget_bias or chrono_init, not both")
    if bias_ih is None or bias_hh is None:
        raise ValueError("forget_bias and chrono_init need bias=True")
    hidden = bias_ih.numel() // 4
    with torch.no_grad():
        if forget_bias is not None:
            bias_ih[hidden : 2 * hidden].fill_(forget_bias)
            bias_hh[hidden : 2 * hidden].zero_()
            return
        assert chrono_init is not None
        if chrono_init < 3:
            raise ValueError(f"chrono_init is the longest time scale T_max >= 3, got {chrono_init}")
        time_scales = torch.empty(hidden).uniform_(1.0, chrono_init - 1.0)
        bias_ih[hidden : 2 * hidden] = time_scales.log()
        bias_ih[:hidden] = -time_scales.log()
        bias_hh[: 2 * hidden].zero_()


class LSTMCell(_CellBase):
    r"""Long short-term memory cell (Hochreiter & Schmidhuber, 1997, with the forget gate of
    Gers et al., 2000), as ``torch.nn.LSTMCell``.

    .. code-block:: text

        i_t = σ(x_t W_ii^T + b_ii + h_{t-1} W_hi^T + b_hi)       input gate
        f_t = σ(x_t W_if^T + b_if + h_{t-1} W_hf^T + b_hf)       forget gate
        g_t = tanh(x_t W_ig^T + b_ig + h_{t-1} W_hg^T + b_hg)    candidate cell
        o_t = σ(x_t W_io^T + b_io + h_{t-1} W_ho^T + b_ho)       output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)

    ``weight_ih`` = [W_ii; W_if; W_ig; W_io] (4H, I), ``weight_hh`` (4H, H), biases (4H,);
    ``forward(x_t (B, I), (h, c) or None) -> (h_t, c_t)``, each (B, H).

    ``forget_bias``: if given, b_if + b_hf starts at this value (b_if = forget_bias,
    b_hf = 0) instead of random; 1.0 is the classic choice (Gers et al., 2000; Jozefowicz et
    al., 2015) so that the cell remembers by default at the start of training.
    ``chrono_init=T_max``: chrono initialisation of b_i and b_f instead
    (:func:`init_gate_biases`).
    """

    num_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float | None = None,
        chrono_init: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.forget_bias = forget_bias
        self.chrono_init = chrono_init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        init_gate_biases(self.bias_ih, self.bias_hh, self.forget_bias, self.chrono_init)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        h_prev, c_prev = _check_lstm_state(self, input, hx)  # (B, H) each
        gates = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(
            h_prev, self.weight_hh, self.bias_hh
        )  # (B, 4H)
        gate_i, gate_f, gate_g, gate_o = gates.chunk(4, 1)  # (B, H) each
        i = torch.sigmoid(gate_i)
        f = torch.sigmoid(gate_f)
        g = torch.tanh(gate_g)
        o = torch.sigmoid(gate_o)
        c = f * c_prev + i * g
        h = o * torch.tanh(c)
        return h, c


class PeepholeLSTMCell(LSTMCell):
    r"""LSTM with peephole connections (Gers & Schmidhuber, 2000; Gers et al., 2002): the
    cell state feeds the gates through diagonal weights, so the gates can see the memory
    even while the output gate keeps it hidden from h.

    .. code-block:: text

        i_t = σ(x_t W_ii^T + b_ii + h_{t-1} W_hi^T + b_hi + w_ci ⊙ c_{t-1})
        f_t = σ(x_t W_if^T + b_if + h_{t-1} W_hf^T + b_hf + w_cf ⊙ c_{t-1})
        g_t = tanh(x_t W_ig^T + b_ig + h_{t-1} W_hg^T + b_hg)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        o_t = σ(x_t W_io^T + b_io + h_{t-1} W_ho^T + b_ho + w_co ⊙ c_t)   (the new cell)
        h_t = o_t ⊙ tanh(c_t)

    Parameters as :class:`LSTMCell` plus ``weight_ci``, ``weight_cf``, ``weight_co`` (H,):
    the diagonals w_ci, w_cf, w_co.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float | None = None,
        chrono_init: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, forget_bias, chrono_init)
        self.weight_ci = nn.Parameter(torch.empty(hidden_size))
        self.weight_cf = nn.Parameter(torch.empty(hidden_size))
        self.weight_co = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        h_prev, c_prev = _check_lstm_state(self, input, hx)  # (B, H) each
        gates = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(
            h_prev, self.weight_hh, self.bias_hh
        )  # (B, 4H)
        gate_i, gate_f, gate_g, gate_o = gates.chunk(4, 1)  # (B, H) each
        i = torch.sigmoid(gate_i + self.weight_ci * c_prev)
        f = torch.sigmoid(gate_f + self.weight_cf * c_prev)
        g = torch.tanh(gate_g)
        c = f * c_prev + i * g
        o = torch.sigmoid(gate_o + self.weight_co * c)
        h = o * torch.tanh(c)
        return h, c
