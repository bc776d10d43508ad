r"""Sequence kernels: the cell equations of :mod:`seqlab.nn.cells` over T steps, with
backpropagation through time derived by hand.

Each kernel (:func:`rnn_sequence`, :func:`gru_sequence`, :func:`lstm_sequence`,
:func:`peephole_lstm_sequence`) is an ``autograd.Function`` that runs all T steps of one
layer in one direction. It is given the input projection ``x_t W_ih^T + b`` of every step,
computed beforehand in one matmul, so each step only multiplies by ``W_hh``; its backward
pass is backpropagation through time derived by hand (the derivation is in the comments),
which avoids building an autograd graph of ~10 nodes per step. ``Recurrent`` runs these
kernels on its explicit path; the tests check them against the cell modules and
``torch.autograd.gradcheck``. Weights, gate order and shapes follow the cells' conventions.

Kernels work time-major on a batch sorted by decreasing length: ``batch_sizes[t]`` is the
number of sequences still running at step t (as in ``PackedSequence``), so step t only
touches rows ``:batch_sizes[t]``. Outputs at finished positions stay zero. A kernel may be
given ``tap`` (T, B, H), added to every h_t; the gradient with respect to it is dL/dh_t,
the full gradient flowing into the hidden state at step t (see
``seqlab.analysis.gradient_flow``). ``clip`` (:data:`BpttClip`) clips that gradient at
every step of BPTT, by value or by the norm of each sequence's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

BpttClip = tuple[Literal["norm", "value"], float]
"""Clip dL/dh_t at every step of BPTT: ``("value", v)`` clamps each entry to [-v, v];
``("norm", v)`` rescales each sequence's gradient row to norm at most v."""

# ---------------------------------------------------------------------------------------
# Notation in the backward passes: dX is dL/dX; ~ marks a pre-activation (i~ is the argument
# of σ in i_t). σ'(u) = σ(u)(1 - σ(u)), tanh'(u) = 1 - tanh(u)². Walking t = T-1 .. 0, dh and
# dc hold the gradient arriving from step t+1; the output's gradient at t is added to it.
# Factors that do not depend on the recursion are computed for all t at once before the
# loop; the weight gradients are one matmul over all steps after it, e.g.
# dW_hh = Σ_t da~_t^T h_{t-1}.
#
# Speed: every per-step tensor view is made once before the loop, and tanh is computed as
# 2σ(2u) - 1. On CPU, torch.tanh (like exp) spreads any tensor above 2048 elements over all
# threads; for the (B, H) blocks of one step the thread hand-off costs more than the work,
# and milliseconds when other processes hold the cores. σ stays on one thread there.
# ---------------------------------------------------------------------------------------


def _tanh_(x: Tensor) -> Tensor:
    """tanh(x) in place; 2σ(2x) - 1 on CPU (see above)."""
    if x.device.type != "cpu":
        return x.tanh_()
    return x.mul_(2).sigmoid_().mul_(2).sub_(1)


def _steps(seq: Tensor, batch_sizes: Sequence[int]) -> list[Tensor]:
    """Views of ``seq`` (T, B, ...) per step, restricted to the rows still running."""
    batch = seq.size(1)
    return [x if n == batch else x[:n] for x, n in zip(seq.unbind(0), batch_sizes, strict=True)]


def _clip_(grad: Tensor, clip: BpttClip) -> None:
    kind, limit = clip
    if kind == "value":
        grad.clamp_(-limit, limit)
    else:
        grad.mul_(limit / grad.norm(dim=1, keepdim=True).clamp_min(limit))


def _shifted(first: Tensor, steps: Tensor) -> Tensor:
    """[first, steps[0], ..., steps[T-2]]: the value at t-1 for every step t. (T, B, H)"""
    return torch.cat([first.unsqueeze(0), steps[:-1]])


class _Backward:
    """The per-step bookkeeping every backward loop shares: the running gradient dh (B, H)
    of the hidden state, the output's gradient added at each step, clipping, the tap."""

    def __init__(
        self, h0: Tensor, d_hidden: Tensor | None, batch_sizes: Sequence[int], has_tap: bool
    ) -> None:
        self.dh = torch.zeros_like(h0)
        self.batch_sizes = batch_sizes
        steps = len(batch_sizes)
        self.d_hidden = _steps(d_hidden, batch_sizes) if d_hidden is not None else None
        self.d_tap = h0.new_zeros(steps, *h0.shape) if has_tap else None
        self.d_taps = _steps(self.d_tap, batch_sizes) if self.d_tap is not None else None

    def incoming(self, t: int, clip: BpttClip | None) -> Tensor:
        """dh_t (n, H), a view into the running gradient: from step t+1 plus the output's."""
        n = self.batch_sizes[t]
        dh_t = self.dh if n == self.dh.size(0) else self.dh[:n]
        if self.d_hidden is not None:
            dh_t += self.d_hidden[t]
        if clip is not None:
            _clip_(dh_t, clip)
        if self.d_taps is not None:
            self.d_taps[t].copy_(dh_t)
        return dh_t


class _RNNSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,
        w_hh: Tensor,
        h0: Tensor,
        tap: Tensor | None,
        batch_sizes: Sequence[int],
        relu: bool,
        clip: BpttClip | None,
    ) -> Tensor:
        # gx (T, B, H) = x_t W_ih^T + b_ih + b_hh;  h_t = act(gx_t + h_{t-1} W_hh^T)
        hidden = gx.new_zeros(gx.shape)  # (T, B, H)
        hs = _steps(hidden, batch_sizes)
        xs = _steps(gx, batch_sizes)
        taps = _steps(tap, batch_sizes) if tap is not None else None
        w_hh_t = w_hh.t()
        h_prev = h0
        for t, h in enumerate(hs):
            n = h.size(0)
            torch.addmm(xs[t], h_prev if h_prev.size(0) == n else h_prev[:n], w_hh_t, out=h)
            if relu:
                h.relu_()
            else:
                _tanh_(h)
            if taps is not None:
                h += taps[t]
            h_prev = h
        ctx.save_for_backward(hidden, h0, w_hh, tap)
        ctx.batch_sizes, ctx.relu, ctx.clip = batch_sizes, relu, clip
        ctx.set_materialize_grads(False)
        return hidden

    @staticmethod
    def backward(ctx: Any, d_hidden: Tensor | None) -> tuple[Tensor | None, ...]:
        hidden, h0, w_hh, tap = ctx.saved_tensors
        act = hidden if tap is None else hidden - tap  # act(a~_t), without the tap
        # da~_t = dh_t ⊙ act'(a~_t);  dh_{t-1} = da~_t W_hh
        slope = _steps((act > 0).to(act.dtype) if ctx.relu else 1 - act * act, ctx.batch_sizes)
        d_pre = torch.zeros_like(hidden)
        d_pres = _steps(d_pre, ctx.batch_sizes)
        grad = _Backward(h0, d_hidden, ctx.batch_sizes, tap is not None)
        for t in reversed(range(len(d_pres))):
            dh_t = grad.incoming(t, ctx.clip)
            torch.mul(dh_t, slope[t], out=d_pres[t])
            torch.mm(d_pres[t], w_hh, out=dh_t)
        d_w_hh = d_pre.flatten(0, 1).t().mm(_shifted(h0, hidden).flatten(0, 1))
        return d_pre, d_w_hh, grad.dh, grad.d_tap, None, None, None


class _GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,
        w_hh: Tensor,
        b_hh: Tensor | None,
        h0: Tensor,
        tap: Tensor | None,
        batch_sizes: Sequence[int],
        clip: BpttClip | None,
    ) -> Tensor:
        # gx (T, B, 3H) = x_t W_ih^T + b_ih, blocks r, z, n
        steps, batch, gate_size = gx.shape
        hs = gate_size // 3
        gh_all = gx.new_zeros(gx.shape)  # h_{t-1} W_hh^T + b_hh (T, B, 3H)
        rz_all = gx.new_zeros(steps, batch, 2 * hs)  # r_t, z_t
        new_all = gx.new_zeros(steps, batch, hs)  # n_t
        hidden = gx.new_zeros(steps, batch, hs)  # h_t
        xs, ghs, rzs = (_steps(s, batch_sizes) for s in (gx, gh_all, rz_all))
        news, out = _steps(new_all, batch_sizes), _steps(hidden, batch_sizes)
        taps = _steps(tap, batch_sizes) if tap is not None else None
        w_hh_t = w_hh.t()
        h_prev = h0
        for t, h in enumerate(out):
            n = h.size(0)
            h_prev = h_prev if h_prev.size(0) == n else h_prev[:n]
            gh, rz, new = ghs[t], rzs[t], news[t]
            if b_hh is None:
                torch.mm(h_prev, w_hh_t, out=gh)
            else:
                torch.addmm(b_hh, h_prev, w_hh_t, out=gh)
            x_rz, x_n = xs[t].split((2 * hs, hs), 1)
            gh_rz, gh_n = gh.split((2 * hs, hs), 1)
            r, z = rz.chunk(2, 1)
            torch.add(x_rz, gh_rz, out=rz).sigmoid_()  # r_t, z_t
            _tanh_(torch.addcmul(x_n, r, gh_n, out=new))  # n_t
            torch.sub(h_prev, new, out=h).mul_(z).add_(new)  # h_t = n_t + z_t ⊙ (h_{t-1} - n_t)
            if taps is not None:
                h += taps[t]
            h_prev = h
        ctx.save_for_backward(gh_all, rz_all, new_all, hidden, h0, w_hh, b_hh)
        ctx.batch_sizes, ctx.clip, ctx.has_tap = batch_sizes, clip, tap is not None
        ctx.set_materialize_grads(False)
        return hidden

    @staticmethod
    def backward(ctx: Any, d_hidden: Tensor | None) -> tuple[Tensor | None, ...]:
        gh_all, rz_all, new_all, hidden, h0, w_hh, b_hh = ctx.saved_tensors
        hs = hidden.size(2)
        batch_sizes = ctx.batch_sizes
        r, z = rz_all.chunk(2, 2)
        h_prev = _shifted(h0, hidden)
        # dn~ = dh ⊙ (1 - z) ⊙ tanh'(n~)             (n~ = x W_in^T + b_in + r ⊙ gh_n)
        # dz~ = dh ⊙ (h_{t-1} - n) ⊙ σ'(z~)
        # dr~ = dn~ ⊙ gh_n ⊙ σ'(r~)
        # d(gh) = [dr~, dz~, dn~ ⊙ r];  dh_{t-1} = dh ⊙ z + d(gh) W_hh
        for_new = _steps((1 - z) * (1 - new_all * new_all), batch_sizes)
        for_update = _steps((h_prev - new_all) * z * (1 - z), batch_sizes)
        for_reset = _steps(gh_all[..., 2 * hs :] * r * (1 - r), batch_sizes)
        rs, zs = _steps(r, batch_sizes), _steps(z, batch_sizes)
        d_gh = torch.zeros_like(gh_all)  # dL/d(h_{t-1} W_hh^T + b_hh)
        d_new = torch.zeros_like(hidden)  # dn~
        d_ghs, d_news = _steps(d_gh, batch_sizes), _steps(d_new, batch_sizes)
        grad = _Backward(h0, d_hidden, batch_sizes, ctx.has_tap)
        for t in reversed(range(len(batch_sizes))):
            dh_t = grad.incoming(t, ctx.clip)
            dn, (d_r, d_z, d_n) = d_news[t], d_ghs[t].chunk(3, 1)
            torch.mul(dh_t, for_new[t], out=dn)
            torch.mul(dn, for_reset[t], out=d_r)
            torch.mul(dh_t, for_update[t], out=d_z)
            torch.mul(dn, rs[t], out=d_n)
            torch.addmm(dh_t * zs[t], d_ghs[t], w_hh, out=dh_t)
        d_gx = torch.cat([d_gh[..., : 2 * hs], d_new], 2)
        d_w_hh = d_gh.flatten(0, 1).t().mm(h_prev.flatten(0, 1))
        d_b_hh = d_gh.sum((0, 1)) if b_hh is not None else None
        return d_gx, d_w_hh, d_b_hh, grad.dh, grad.d_tap, None, None


def _doubled_cell_input(gx: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
    """Double the pre-activation of g (block 2 of i, f, g, o), so that one σ over all four
    gates gives σ(2 g~), and g = tanh(g~) = 2σ(2 g~) - 1. Returns (gx', W_hh'^T)."""
    hs = gx.size(2) // 4
    scale = gx.new_ones(4 * hs)
    scale[2 * hs : 3 * hs] = 2.0
    return gx * scale, (w_hh * scale.unsqueeze(1)).t()


class _LSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,
        w_hh: Tensor,
        h0: Tensor,
        c0: Tensor,
        tap: Tensor | None,
        batch_sizes: Sequence[int],
        clip: BpttClip | None,
    ) -> tuple[Tensor, Tensor]:
        # gx (T, B, 4H) = x_t W_ih^T + b_ih + b_hh, blocks i, f, g, o
        steps, batch, gate_size = gx.shape
        hs = gate_size // 4
        gates = gx.new_zeros(gx.shape)  # i_t, f_t, g_t, o_t after their nonlinearities
        cells = gx.new_zeros(steps, batch, hs)  # c_t
        tanh_cells = gx.new_zeros(steps, batch, hs)  # tanh(c_t)
        hidden = gx.new_zeros(steps, batch, hs)  # h_t
        gx, w_hh_t = _doubled_cell_input(gx, w_hh)
        xs, acts, cs = (_steps(s, batch_sizes) for s in (gx, gates, cells))
        tcs, out = _steps(tanh_cells, batch_sizes), _steps(hidden, batch_sizes)
        taps = _steps(tap, batch_sizes) if tap is not None else None
        h_prev, c_prev = h0, c0
        for t, h in enumerate(out):
            n = h.size(0)
            if h_prev.size(0) != n:
                h_prev, c_prev = h_prev[:n], c_prev[:n]
            a, c, tc = acts[t], cs[t], tcs[t]
            torch.addmm(xs[t], h_prev, w_hh_t, out=a).sigmoid_()
            i, f, g, o = a.chunk(4, 1)
            g.mul_(2).sub_(1)  # g = tanh(g~)
            torch.mul(f, c_prev, out=c).addcmul_(i, g)  # c_t = f ⊙ c_{t-1} + i ⊙ g
            _tanh_(torch.mul(c, 1, out=tc))
            torch.mul(o, tc, out=h)  # h_t = o ⊙ tanh(c_t)
            if taps is not None:
                h += taps[t]
            h_prev, c_prev = h, c
        ctx.save_for_backward(gates, cells, tanh_cells, hidden, h0, c0, w_hh)
        ctx.batch_sizes, ctx.clip, ctx.has_tap = batch_sizes, clip, tap is not None
        ctx.set_materialize_grads(False)
        return hidden, cells

    @staticmethod
    def backward(
        ctx: Any, d_hidden: Tensor | None, d_cells: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        gates, cells, tanh_cells, hidden, h0, c0, w_hh = ctx.saved_tensors
        steps, batch, hs = hidden.shape
        batch_sizes = ctx.batch_sizes
        i, f, g, o = gates.chunk(4, 2)
        # dc  += dh ⊙ o ⊙ tanh'(c)
        # di~ = dc ⊙ g ⊙ σ'(i~)     df~ = dc ⊙ c_{t-1} ⊙ σ'(f~)     dg~ = dc ⊙ i ⊙ tanh'(g~)
        # do~ = dh ⊙ tanh(c) ⊙ σ'(o~)
        # dc_{t-1} = dc ⊙ f;   dh_{t-1} = [di~, df~, dg~, do~] W_hh
        for_gates = torch.stack(
            [
                g * i * (1 - i),
                _shifted(c0, cells) * f * (1 - f),
                i * (1 - g * g),
                tanh_cells * o * (1 - o),
            ],
            2,
        )  # (T, B, 4, H): times (dc, dc, dc, dh)
        for_gates_t = _steps(for_gates, batch_sizes)
        dc_from_h = _steps(o * (1 - tanh_cells * tanh_cells), batch_sizes)
        fs = _steps(f, batch_sizes)
        d_cells_t = _steps(d_cells, batch_sizes) if d_cells is not None else None
        d_gates = torch.zeros_like(gates)
        d_gates_t = _steps(d_gates.view(steps, batch, 4, hs), batch_sizes)
        grad = _Backward(h0, d_hidden, batch_sizes, ctx.has_tap)
        dc = torch.zeros_like(c0)
        for t in reversed(range(steps)):
            dh_t = grad.incoming(t, ctx.clip)
            n = dh_t.size(0)
            dc_t = dc if n == batch else dc[:n]
            if d_cells_t is not None:
                dc_t += d_cells_t[t]
            dc_t.addcmul_(dh_t, dc_from_h[t])
            da = torch.mul(
                for_gates_t[t], torch.stack((dc_t, dc_t, dc_t, dh_t), 1), out=d_gates_t[t]
            )
            dc_t.mul_(fs[t])
            torch.mm(da.view(n, 4 * hs), w_hh, out=dh_t)
        d_w_hh = d_gates.flatten(0, 1).t().mm(_shifted(h0, hidden).flatten(0, 1))
        return d_gates, d_w_hh, grad.dh, dc, grad.d_tap, None, None


class _PeepholeLSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        gx: Tensor,
        w_hh: Tensor,
        w_ci: Tensor,
        w_cf: Tensor,
        w_co: Tensor,
        h0: Tensor,
        c0: Tensor,
        tap: Tensor | None,
        batch_sizes: Sequence[int],
        clip: BpttClip | None,
    ) -> tuple[Tensor, Tensor]:
        # gx (T, B, 4H) = x_t W_ih^T + b_ih + b_hh, blocks i, f, g, o
        steps, batch, gate_size = gx.shape
        hs = gate_size // 4
        gates = gx.new_zeros(gx.shape)  # i_t, f_t, g_t, o_t after their nonlinearities
        cells = gx.new_zeros(steps, batch, hs)
        tanh_cells = gx.new_zeros(steps, batch, hs)
        hidden = gx.new_zeros(steps, batch, hs)
        gx, w_hh_t = _doubled_cell_input(gx, w_hh)
        xs, acts, cs = (_steps(s, batch_sizes) for s in (gx, gates, cells))
        tcs, out = _steps(tanh_cells, batch_sizes), _steps(hidden, batch_sizes)
        taps = _steps(tap, batch_sizes) if tap is not None else None
        w_cif = torch.stack([w_ci, w_cf])  # (2, H)
        h_prev, c_prev = h0, c0
        for t, h in enumerate(out):
            n = h.size(0)
            if h_prev.size(0) != n:
                h_prev, c_prev = h_prev[:n], c_prev[:n]
            a, c, tc = acts[t], cs[t], tcs[t]
            torch.addmm(xs[t], h_prev, w_hh_t, out=a)
            a_if, a_g, a_o = a.split((2 * hs, hs, hs), 1)
            a_if.view(n, 2, hs).addcmul_(w_cif, c_prev.unsqueeze(1))  # i~, f~ += w ⊙ c_{t-1}
            a[:, : 3 * hs].sigmoid_()
            a_g.mul_(2).sub_(1)  # g = tanh(g~)
            i, f = a_if.chunk(2, 1)
            torch.mul(f, c_prev, out=c).addcmul_(i, a_g)  # c_t = f ⊙ c_{t-1} + i ⊙ g
            a_o.addcmul_(w_co, c).sigmoid_()  # o_t = σ(o~ + w_co ⊙ c_t)
            _tanh_(torch.mul(c, 1, out=tc))
            torch.mul(a_o, tc, out=h)
            if taps is not None:
                h += taps[t]
            h_prev, c_prev = h, c
        ctx.save_for_backward(gates, cells, tanh_cells, hidden, h0, c0, w_hh, w_ci, w_cf, w_co)
        ctx.batch_sizes, ctx.clip, ctx.has_tap = batch_sizes, clip, tap is not None
        ctx.set_materialize_grads(False)
        return hidden, cells

    @staticmethod
    def backward(
        ctx: Any, d_hidden: Tensor | None, d_cells: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        gates, cells, tanh_cells, hidden, h0, c0, w_hh, w_ci, w_cf, w_co = ctx.saved_tensors
        steps, batch, hs = hidden.shape
        batch_sizes = ctx.batch_sizes
        i, f, g, o = gates.chunk(4, 2)
        c_prev = _shifted(c0, cells)
        # do~ = dh ⊙ tanh(c) ⊙ σ'(o~)
        # dc += dh ⊙ o ⊙ tanh'(c) + do~ ⊙ w_co
        # di~ = dc ⊙ g ⊙ σ'(i~)     df~ = dc ⊙ c_{t-1} ⊙ σ'(f~)     dg~ = dc ⊙ i ⊙ tanh'(g~)
        # dc_{t-1} = dc ⊙ f + di~ ⊙ w_ci + df~ ⊙ w_cf;   dh_{t-1} = [di~, df~, dg~, do~] W_hh
        # dw_ci = Σ di~ ⊙ c_{t-1},  dw_cf = Σ df~ ⊙ c_{t-1},  dw_co = Σ do~ ⊙ c_t
        for_gates = torch.stack(
            [g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], 2
        )  # (T, B, 3, H): times dc
        for_gates_t = _steps(for_gates, batch_sizes)
        for_output = _steps(tanh_cells * o * (1 - o), batch_sizes)
        dc_from_h = _steps(o * (1 - tanh_cells * tanh_cells), batch_sizes)
        fs = _steps(f, batch_sizes)
        d_cells_t = _steps(d_cells, batch_sizes) if d_cells is not None else None
        d_gates = torch.zeros_like(gates)
        d_gates_t = _steps(d_gates, batch_sizes)
        grad = _Backward(h0, d_hidden, batch_sizes, ctx.has_tap)
        dc = torch.zeros_like(c0)
        for t in reversed(range(steps)):
            dh_t = grad.incoming(t, ctx.clip)
            n = dh_t.size(0)
            dc_t = dc if n == batch else dc[:n]
            if d_cells_t is not None:
                dc_t += d_cells_t[t]
            da = d_gates_t[t]
            d_ifg, d_o = da.split((3 * hs, hs), 1)
            torch.mul(for_output[t], dh_t, out=d_o)
            dc_t.addcmul_(dh_t, dc_from_h[t]).addcmul_(d_o, w_co)
            torch.mul(for_gates_t[t], dc_t.unsqueeze(1), out=d_ifg.view(n, 3, hs))
            d_i, d_f, _ = d_ifg.chunk(3, 1)
            dc_t.mul_(fs[t]).addcmul_(d_i, w_ci).addcmul_(d_f, w_cf)
            torch.mm(da, w_hh, out=dh_t)
        d_w_hh = d_gates.flatten(0, 1).t().mm(_shifted(h0, hidden).flatten(0, 1))
        d_w_ci = (d_gates[..., :hs] * c_prev).sum((0, 1))
        d_w_cf = (d_gates[..., hs : 2 * hs] * c_prev).sum((0, 1))
        d_w_co = (d_gates[..., 3 * hs :] * cells).sum((0, 1))
        return d_gates, d_w_hh, d_w_ci, d_w_cf, d_w_co, grad.dh, dc, grad.d_tap, None, None


def rnn_sequence(
    gx: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    batch_sizes: Sequence[int],
    nonlinearity: Literal["tanh", "relu"] = "tanh",
    tap: Tensor | None = None,
    clip: BpttClip | None = None,
) -> Tensor:
    """Elman RNN over T steps: ``gx`` (T, B, H) = x_t W_ih^T + b_ih + b_hh, ``w_hh`` (H, H),
    ``h0`` (B, H) -> h_t for every step (T, B, H), zero past each sequence's end."""
    out: Tensor = _RNNSequence.apply(gx, w_hh, h0, tap, batch_sizes, nonlinearity == "relu", clip)
    return out


def gru_sequence(
    gx: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    h0: Tensor,
    batch_sizes: Sequence[int],
    tap: Tensor | None = None,
    clip: BpttClip | None = None,
) -> Tensor:
    """GRU over T steps: ``gx`` (T, B, 3H) = x_t W_ih^T + b_ih (b_hh stays inside, as r
    multiplies it), ``w_hh`` (3H, H), ``b_hh`` (3H,), ``h0`` (B, H) -> h_t (T, B, H)."""
    out: Tensor = _GRUSequence.apply(gx, w_hh, b_hh, h0, tap, batch_sizes, clip)
    return out


def lstm_sequence(
    gx: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    batch_sizes: Sequence[int],
    tap: Tensor | None = None,
    clip: BpttClip | None = None,
) -> tuple[Tensor, Tensor]:
    """LSTM over T steps: ``gx`` (T, B, 4H) = x_t W_ih^T + b_ih + b_hh, ``w_hh`` (4H, H),
    ``h0``, ``c0`` (B, H) -> (h_t, c_t) for every step, each (T, B, H)."""
    hidden, cells = _LSTMSequence.apply(gx, w_hh, h0, c0, tap, batch_sizes, clip)
    return hidden, cells


def peephole_lstm_sequence(
    gx: Tensor,
    w_hh: Tensor,
    peepholes: tuple[Tensor, Tensor, Tensor],
    h0: Tensor,
    c0: Tensor,
    batch_sizes: Sequence[int],
    tap: Tensor | None = None,
    clip: BpttClip | None = None,
) -> tuple[Tensor, Tensor]:
    """Peephole LSTM over T steps: as :func:`lstm_sequence` plus ``peepholes`` =
    (w_ci, w_cf, w_co), each (H,)."""
    hidden, cells = _PeepholeLSTMSequence.apply(
        gx, w_hh, *peepholes, h0, c0, tap, batch_sizes, clip
    )
    return hidden, cells
