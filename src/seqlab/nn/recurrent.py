r"""``Recurrent``: a cell unrolled over time, stacked in layers, in one or both directions.

.. code-block:: text

    x^0 = input                                                    (B, T, I)
    y^l = [ cell_l(x^l) forward in time ; cell_l(x^l) backward in time ]   (B, T, D·H)
    y^l = y^l + x^l                  if residual and l > 0
    x^{l+1} = dropout(y^l)           between layers only, never on the recurrent connection
    output = y^{L-1}

Two paths compute this with the same parameters (named and laid out as in
``torch.nn.LSTM``/``GRU``/``RNN``, so state dicts load in both directions):

* **fused**: torch's own kernel (oneDNN on CPU, cuDNN on GPU), exactly the call
  ``torch.nn.LSTM`` makes. Used for cells ``lstm``, ``gru``, ``rnn_tanh`` and ``rnn_relu``
  without BPTT clipping or gradient taps, unless ``force_explicit=True``. With locked
  dropout or residual connections in a stack it runs one kernel call per layer
  (``layerwise``) and applies them in between.
* **explicit**: the sequence kernels of :mod:`seqlab.nn.bptt` (the cell equations, input
  projection hoisted out of the time loop into one matmul per layer and direction,
  backpropagation through time derived by hand). Everything else: peephole LSTM, BPTT
  clipping, gradient taps, ``force_explicit``.

Variable lengths: ``lengths`` (B,) gives each sequence's true length; padding never changes
a result. The fused path packs the batch (``pack_padded_sequence``); the explicit path sorts
it by length and shrinks the running batch as sequences end. Outputs at padded positions
are zero, the final state of each sequence is taken at its true length, and the backward
direction reads each sequence from its own last step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqlab.errors import ConfigError
from seqlab.nn.bptt import (
    BpttClip,
    gru_sequence,
    lstm_sequence,
    peephole_lstm_sequence,
    rnn_sequence,
)
from seqlab.nn.cells import init_gate_biases
from seqlab.nn.dropout import locked_dropout

Mode = Literal["lstm", "gru", "rnn_tanh", "rnn_relu", "peephole_lstm"]
DropoutMode = Literal["standard", "locked"]
State = Tensor | tuple[Tensor, Tensor]
"""``h`` (L·D, B, H) for GRU and RNN cells; ``(h, c)`` for LSTM cells."""

_TORCH_MODES: dict[str, str] = {
    "lstm": "LSTM",
    "peephole_lstm": "LSTM",
    "gru": "GRU",
    "rnn_tanh": "RNN_TANH",
    "rnn_relu": "RNN_RELU",
}
_VF_RNNS = {"GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def _validate(
    mode: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    dropout_mode: str,
    forget_bias: float | None,
    chrono_init: int | None,
    bias: bool,
    bptt_clip: BpttClip | None,
) -> None:
    if mode not in _TORCH_MODES:
        raise ConfigError(f"unknown recurrent cell {mode!r} (known: {', '.join(_TORCH_MODES)})")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(num_layers, int) or num_layers <= 0:
        raise ConfigError(f"num_layers must be a positive integer, got {num_layers!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if dropout_mode not in ("standard", "locked"):
        raise ConfigError(f"dropout_mode must be 'standard' or 'locked', got {dropout_mode!r}")
    for name, init in (("forget_bias", forget_bias), ("chrono_init", chrono_init)):
        if init is not None and (mode not in ("lstm", "peephole_lstm") or not bias):
            raise ConfigError(f"{name} needs an LSTM cell with bias=True")
    if forget_bias is not None and chrono_init is not None:
        raise ConfigError("give forget_bias or chrono_init, not both")
    if chrono_init is not None and (not isinstance(chrono_init, int) or chrono_init < 3):
        raise ConfigError(f"chrono_init is the longest time scale T_max >= 3, got {chrono_init!r}")
    if bptt_clip is not None and (
        len(bptt_clip) != 2 or bptt_clip[0] not in ("norm", "value") or not bptt_clip[1] > 0
    ):
        raise ConfigError(f"bptt_clip must be ('norm' | 'value', limit > 0), got {bptt_clip!r}")


class Recurrent(nn.RNNBase):
    r"""Stacked, optionally bidirectional recurrent network over a batch of sequences.

    ``Recurrent(mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=True,
    dropout=0.0, bidirectional=False, *, dropout_mode="standard", residual=False,
    forget_bias=None, chrono_init=None, bptt_clip=None, force_explicit=False)``

    * ``mode``: the cell: ``"lstm"``, ``"gru"``, ``"rnn_tanh"``, ``"rnn_relu"`` (Elman) or
      ``"peephole_lstm"``; the equations are in :mod:`seqlab.nn.cells`.
    * ``dropout``: probability of dropping a unit of each layer's output before it enters
      the next layer (with one layer it has no effect). ``dropout_mode="locked"`` uses one
      mask per sequence for all time steps (variational dropout, :mod:`seqlab.nn.dropout`).
    * ``residual``: add each layer's input to its output, for layers 1..L-1 (whose input
      has the output's size D·H).
    * ``forget_bias``: LSTM cells only; start the forget gate's bias at this value.
    * ``chrono_init``: LSTM cells only; chrono initialisation of the input and forget gates'
      biases for time scales up to this many steps (:func:`seqlab.nn.cells.init_gate_biases`).
    * ``bptt_clip``: clip dL/dh_t at every step of BPTT, ``("norm", v)`` or
      ``("value", v)`` (Graves, 2013; Mikolov, 2012); the explicit path only.
    * ``force_explicit``: use the explicit path even where the fused kernel applies.

    ``forward(input, state=None, lengths=None) -> (output, state)``, like
    ``torch.nn.LSTM``: ``input`` (B, T, I) (``batch_first``) or (T, B, I); ``state`` and
    the returned state are ``h`` or ``(h, c)`` of shape (L·D, B, H) with L layers and D
    directions, layer-major with the backward direction second as in torch; ``lengths``
    (B,) integers in 1..T; ``output`` (B, T, D·H), zero past each sequence's length.

    Parameters: ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
    (suffix ``_reverse`` for the backward direction) exactly as in ``torch.nn.LSTM`` (gates
    i, f, g, o), ``torch.nn.GRU`` (r, z, n) or ``torch.nn.RNN``, plus ``weight_ci_l{k}``,
    ``weight_cf_l{k}``, ``weight_co_l{k}`` (H,) for the peephole LSTM. ``cell_type`` holds
    ``mode``; ``mode`` itself keeps torch's name of the kernel (``"LSTM"``, ...).
    """

    # class defaults, read by reset_parameters while RNNBase.__init__ runs
    forget_bias: float | None = None
    chrono_init: int | None = None

    def __init__(
        self,
        mode: Mode,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dropout_mode: DropoutMode = "standard",
        residual: bool = False,
        forget_bias: float | None = None,
        chrono_init: int | None = None,
        bptt_clip: BpttClip | None = None,
        force_explicit: bool = False,
    ) -> None:
        _validate(
            mode,
            input_size,
            hidden_size,
            num_layers,
            dropout,
            dropout_mode,
            forget_bias,
            chrono_init,
            bias,
            bptt_clip,
        )
        super().__init__(
            _TORCH_MODES[mode],
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout if num_layers > 1 else 0.0,  # torch warns about 1 layer + dropout
            bidirectional=bidirectional,
        )
        self.dropout = float(dropout)
        self.cell_type: Mode = mode
        self.num_directions = 2 if bidirectional else 1
        self.dropout_mode: DropoutMode = dropout_mode
        self.residual = residual
        self.forget_bias = forget_bias
        self.chrono_init = chrono_init
        self.bptt_clip = bptt_clip
        self.force_explicit = force_explicit
        # Whether forward runs torch's fused kernel (unless gradient taps are open): over the
        # whole stack at once, or one layer at a time where something happens between layers
        # that the kernel cannot do (locked dropout, residual connections).
        stacked = num_layers > 1
        self.fused = not force_explicit and mode != "peephole_lstm" and bptt_clip is None
        self.layerwise = (
            self.fused and stacked and (residual or (dropout_mode == "locked" and dropout > 0))
        )
        self._taps: list[Tensor] | None = None
        if mode == "peephole_lstm":
            for layer in range(num_layers):
                for suffix in ("", "_reverse")[: self.num_directions]:
                    for gate in "ifo":
                        weight = nn.Parameter(torch.empty(hidden_size))
                        setattr(self, f"weight_c{gate}_l{layer}{suffix}", weight)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As torch: every parameter U(-1/√H, 1/√H); then the LSTM gate biases, if asked."""
        super().reset_parameters()
        if self.forget_bias is not None or self.chrono_init is not None:
            for names in self._all_weights:
                bias_ih, bias_hh = getattr(self, names[2]), getattr(self, names[3])
                init_gate_biases(bias_ih, bias_hh, self.forget_bias, self.chrono_init)

    def extra_repr(self) -> str:
        options = [f"{self.cell_type!r}", super().extra_repr()]
        if self.dropout_mode != "standard":
            options.append(f"dropout_mode={self.dropout_mode!r}")
        if self.residual:
            options.append("residual=True")
        if self.forget_bias is not None:
            options.append(f"forget_bias={self.forget_bias}")
        if self.chrono_init is not None:
            options.append(f"chrono_init={self.chrono_init}")
        if self.bptt_clip is not None:
            options.append(f"bptt_clip={self.bptt_clip}")
        if self.force_explicit:
            options.append("force_explicit=True")
        return ", ".join(options)

    @contextmanager
    def gradient_taps(self) -> Iterator[list[Tensor]]:
        """Tap dL/dh_t. Inside the block every forward runs the explicit path and appends to
        the yielded list a zero tensor (L, D, B, T, H) that requires grad and is added to the
        hidden state h_t of each layer, direction and step. After backward, its gradient is
        dL/dh_t: the whole gradient reaching h_t, through the output, the next time step and
        the next layer (clipped, if ``bptt_clip`` is set). It is zero at padded steps."""
        taps: list[Tensor] = []
        outer, self._taps = self._taps, taps
        try:
            yield taps
        finally:
            self._taps = outer

    def forward(
        self,
        input: Tensor,
        state: State | None = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor, State]:
        steps, batch = self._check_input(input)
        lengths_cpu = None if lengths is None else self._check_lengths(lengths, steps, batch)
        h0, c0 = self._initial_state(input, state, batch)
        if self.fused and self._taps is None:
            return self._forward_fused(input, h0, c0, lengths_cpu)
        return self._forward_explicit(input, h0, c0, lengths_cpu)

    # -- checks ----------------------------------------------------------------------------

    def _check_input(self, input: Tensor) -> tuple[int, int]:
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        if not isinstance(input, Tensor) or input.dim() != 3:
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"Recurrent expects input of shape {layout}, got {shape}")
        if input.size(2) != self.input_size:
            raise ValueError(
                f"input has {input.size(2)} features per step, expected input_size="
                f"{self.input_size}"
            )
        if input.dtype != self.weight_ih_l0.dtype:
            raise ValueError(
                f"input dtype {input.dtype} does not match the weights' dtype "
                f"{self.weight_ih_l0.dtype}; convert one of them with .to(...)"
            )
        batch, steps = input.shape[:2] if self.batch_first else input.shape[1::-1]
        if steps == 0 or batch == 0:
            raise ValueError(f"input {layout} is empty: {tuple(input.shape)}")
        return steps, batch

    @staticmethod
    def _check_lengths(lengths: Tensor | Sequence[int], steps: int, batch: int) -> Tensor:
        values = torch.as_tensor(lengths).detach().cpu()
        if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
            raise ValueError(f"lengths must be integers, got dtype {values.dtype}")
        if values.shape != (batch,):
            raise ValueError(
                f"lengths must have one entry per sequence, shape ({batch},); "
                f"got {tuple(values.shape)}"
            )
        if bool((values > steps).any()):
            raise ValueError(
                f"lengths must not exceed the padded length T={steps}; got {values.max().item()}"
            )
        if bool((values <= 0).any()):
            raise ValueError(
                "zero-length sequences cannot be run (every sequence needs at least one step); "
                f"got lengths {values.tolist()}"
            )
        return values.to(torch.int64)

    def _initial_state(
        self, input: Tensor, state: State | None, batch: int
    ) -> tuple[Tensor, Tensor | None]:
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        is_lstm = self.mode == "LSTM"
        if state is None:
            zeros = input.new_zeros(expected)
            return zeros, (input.new_zeros(expected) if is_lstm else None)
        if is_lstm and not (isinstance(state, tuple) and len(state) == 2):
            raise ValueError(f"the state of a {self.cell_type} layer is a tuple (h, c)")
        if not is_lstm and not isinstance(state, Tensor):
            raise ValueError(f"the state of a {self.cell_type} layer is one tensor h")
        parts = state if isinstance(state, tuple) else (state,)
        for name, part in zip("hc", parts, strict=False):
            if part.dim() == 3 and part.size(1) != batch:
                raise ValueError(
                    f"state {name} holds {part.size(1)} sequences but the input has {batch}"
                )
            if part.shape != expected:
                raise ValueError(
                    f"state {name} must have shape (num_layers * num_directions, B, H) = "
                    f"{expected}, got {tuple(part.shape)}"
                )
            if part.dtype != input.dtype:
                raise ValueError(f"state {name} dtype {part.dtype} does not match {input.dtype}")
        return parts[0], (parts[-1] if is_lstm else None)

    # -- fused path ------------------------------------------------------------------------

    def _forward_fused(
        self, input: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> tuple[Tensor, State]:
        self._update_flat_weights()
        weights = cast(list[Tensor], self._flat_weights)
        if not self.layerwise:
            return self._fused_call(input, h0, c0, weights, self.num_layers, self.dropout, lengths)
        # One fused call per layer; locked dropout / residual connections in between.
        per_layer = len(self._all_weights[0]) * self.num_directions
        layer_input = input
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        for layer in range(self.num_layers):
            rows = slice(layer * self.num_directions, (layer + 1) * self.num_directions)
            output, state = self._fused_call(
                layer_input,
                h0[rows],
                None if c0 is None else c0[rows],
                weights[layer * per_layer : (layer + 1) * per_layer],
                1,
                0.0,
                lengths,
            )
            if isinstance(state, tuple):
                h_n.append(state[0])
                c_n.append(state[1])
            else:
                h_n.append(state)
            layer_input = self._between_layers(output, layer_input, layer, self.batch_first)
        h_final = torch.cat(h_n)
        return layer_input, ((h_final, torch.cat(c_n)) if c_n else h_final)

    def _between_layers(
        self, output: Tensor, layer_input: Tensor, layer: int, batch_first: bool
    ) -> Tensor:
        """Layer ``layer``'s output as the next layer's input: plus its own input (residual,
        above the first layer), then dropout (standard or locked), below the last layer."""
        if self.residual and layer > 0:
            output = output + layer_input
        if layer < self.num_layers - 1 and self.dropout > 0:
            output = (
                locked_dropout(output, self.dropout, self.training, batch_first)
                if self.dropout_mode == "locked"
                else F.dropout(output, self.dropout, self.training)
            )
        return output

    def _fused_call(
        self,
        input: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        weights: list[Tensor],
        num_layers: int,
        dropout: float,
        lengths: Tensor | None,
    ) -> tuple[Tensor, State]:
        """torch's kernel over ``num_layers`` layers with these ``weights``. Under CPU bf16
        autocast torch sends the LSTM to oneDNN in bf16, which fails ("could not create a
        primitive descriptor") on CPUs without bf16 support; there it runs in fp32, as
        torch runs the GRU and Elman kernels under autocast anyway."""
        if c0 is not None and _cpu_bf16_lstm_unsupported(input):
            with torch.autocast("cpu", enabled=False):  # so the call below runs the kernel
                return self._fused_call(
                    input.float(), h0.float(), c0.float(), weights, num_layers, dropout, lengths
                )
        args = (self.bias, num_layers, dropout, self.training, self.bidirectional)
        if lengths is None:
            if c0 is not None:
                output, h_n, c_n = _VF.lstm(input, (h0, c0), weights, *args, self.batch_first)
                return output, (h_n, c_n)
            output, h_n = _VF_RNNS[self.mode](input, h0, weights, *args, self.batch_first)
            return output, h_n
        packed = pack_padded_sequence(input, lengths, self.batch_first, enforce_sorted=False)
        order, restore = packed.sorted_indices, packed.unsorted_indices
        assert order is not None and restore is not None  # enforce_sorted=False sets both
        h0 = h0.index_select(1, order)
        if c0 is not None:
            data, h_n, c_n = _VF.lstm(
                packed.data, packed.batch_sizes, (h0, c0.index_select(1, order)), weights, *args
            )
            final: State = (h_n.index_select(1, restore), c_n.index_select(1, restore))
        else:
            data, h_n = _VF_RNNS[self.mode](packed.data, packed.batch_sizes, h0, weights, *args)
            final = h_n.index_select(1, restore)
        output, _ = pad_packed_sequence(
            PackedSequence(data, packed.batch_sizes, order, restore),
            self.batch_first,
            total_length=input.size(1 if self.batch_first else 0),
        )
        return output, final

    # -- explicit path ---------------------------------------------------------------------

    def _forward_explicit(
        self, input: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> tuple[Tensor, State]:
        seq = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        steps, batch = seq.shape[:2]
        order: Tensor | None = None
        last: Tensor | None = None  # each sequence's last step (B,), in sorted order
        reverse_index: Tensor | None = None  # (T, B): t -> length - 1 - t within the length
        batch_sizes = [batch] * steps
        if lengths is not None:
            sorted_lengths, order_cpu = lengths.sort(descending=True, stable=True)
            batch_sizes = (sorted_lengths > torch.arange(steps).unsqueeze(1)).sum(1).tolist()
            order = order_cpu.to(input.device)
            seq, h0 = seq.index_select(1, order), h0.index_select(1, order)
            c0 = None if c0 is None else c0.index_select(1, order)
            last = (sorted_lengths - 1).to(input.device)
            if self.bidirectional:
                time = torch.arange(steps, device=input.device).unsqueeze(1)
                last_row = last.unsqueeze(0)
                reverse_index = torch.where(time <= last_row, last_row - time, time)
        taps = self._new_tap(batch, steps, input) if self._taps is not None else None

        layer_input = seq
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                tap = None
                if taps is not None:
                    tap = taps[layer, direction].transpose(0, 1)  # (T, B, H)
                    tap = tap if order is None else tap.index_select(1, order)
                x = layer_input
                if direction == 1:
                    x = _reverse(x, reverse_index)
                    tap = None if tap is None else _reverse(tap, reverse_index)
                hidden, cells = self._run_cells(
                    layer, direction, x, h0[k], None if c0 is None else c0[k], batch_sizes, tap
                )
                h_n.append(_at_last(hidden, last))
                if cells is not None:
                    c_n.append(_at_last(cells, last))
                outputs.append(_reverse(hidden, reverse_index) if direction == 1 else hidden)
            output = torch.cat(outputs, 2) if len(outputs) > 1 else outputs[0]  # (T, B, D·H)
            output = self._between_layers(output, layer_input, layer, batch_first=False)
            layer_input = output

        h_final = torch.stack(h_n)  # (L·D, B, H)
        c_final = torch.stack(c_n) if c_n else None
        if order is not None:
            restore = order.argsort()
            output = output.index_select(1, restore)
            h_final = h_final.index_select(1, restore)
            c_final = None if c_final is None else c_final.index_select(1, restore)
        if self.batch_first:
            output = output.transpose(0, 1).contiguous()
        return output, (h_final if c_final is None else (h_final, c_final))

    def _new_tap(self, batch: int, steps: int, input: Tensor) -> Tensor:
        assert self._taps is not None
        shape = (self.num_layers, self.num_directions, batch, steps, self.hidden_size)
        tap = input.new_zeros(shape, requires_grad=True)
        self._taps.append(tap)
        return tap

    def _run_cells(
        self,
        layer: int,
        direction: int,
        x: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        batch_sizes: list[int],
        tap: Tensor | None,
    ) -> tuple[Tensor, Tensor | None]:
        """One layer in one direction over time-major ``x`` (T, B, I): (h_t, c_t or None)."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih = getattr(self, "weight_ih" + suffix)
        w_hh = getattr(self, "weight_hh" + suffix)
        b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
        b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
        clip = self.bptt_clip
        # Under autocast the input projection runs in bf16/fp16; the recurrence itself (its
        # preallocated buffers, the cell state) runs in the weights' dtype.
        h0 = h0.to(w_hh.dtype)
        c0 = None if c0 is None else c0.to(w_hh.dtype)
        if self.cell_type == "gru":
            gx = F.linear(x, w_ih, b_ih)  # (T, B, 3H); b_hh stays inside the reset gate
            return gru_sequence(gx.to(w_hh.dtype), w_hh, b_hh, h0, batch_sizes, tap, clip), None
        gx = F.linear(x, w_ih, None if b_ih is None else b_ih + b_hh)  # (T, B, G·H), all t
        gx = gx.to(w_hh.dtype)
        if self.cell_type in ("rnn_tanh", "rnn_relu"):
            nonlinearity: Literal["tanh", "relu"] = (
                "relu" if self.cell_type == "rnn_relu" else "tanh"
            )
            return rnn_sequence(gx, w_hh, h0, batch_sizes, nonlinearity, tap, clip), None
        assert c0 is not None
        if self.cell_type == "lstm":
            return lstm_sequence(gx, w_hh, h0, c0, batch_sizes, tap, clip)
        peepholes = (
            getattr(self, "weight_ci" + suffix),
            getattr(self, "weight_cf" + suffix),
            getattr(self, "weight_co" + suffix),
        )
        return peephole_lstm_sequence(gx, w_hh, peepholes, h0, c0, batch_sizes, tap, clip)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _cpu_bf16_lstm_unsupported(input: Tensor) -> bool:
    """Whether torch would run an LSTM on ``input`` in bf16 on a CPU whose oneDNN lacks it."""
    return (
        input.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and not cpu_has_native_bf16()
    )


def _reverse(seq: Tensor, reverse_index: Tensor | None) -> Tensor:
    """Reverse each sequence of ``seq`` (T, B, F) within its own length (an involution)."""
    if reverse_index is None:
        return seq.flip(0)
    return seq.gather(0, reverse_index.unsqueeze(2).expand_as(seq))


def _at_last(steps: Tensor, last: Tensor | None) -> Tensor:
    """The state at each sequence's last step: ``steps`` (T, B, H) -> (B, H)."""
    if last is None:
        return steps[-1]
    return steps[last, torch.arange(steps.size(1), device=steps.device)]
