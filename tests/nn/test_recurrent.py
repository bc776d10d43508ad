"""Recurrent: fused and explicit paths agree, padding never changes a result, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.nn.cells import PeepholeLSTMCell
from seqlab.nn.dropout import LockedDropout, locked_dropout
from seqlab.nn.recurrent import Recurrent, State

B, T, E, H = 4, 7, 3, 5
LENGTHS = [7, 2, 5, 3]  # unsorted on purpose
FUSABLE = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
ALL = [*FUSABLE, "peephole_lstm"]


def as_tuple(state: State) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def run_and_grads(rnn: Recurrent, x: Tensor, lengths: list[int] | None):
    """Output, final state and the gradients (input, parameters) of a loss using both."""
    rnn.zero_grad()
    x = x.detach().clone().requires_grad_()
    output, final = rnn(x, lengths=lengths)
    loss = output.sin().mean() + sum(s.cos().mean() for s in as_tuple(final))
    loss.backward()
    grads = {"input": x.grad} | {name: p.grad for name, p in rnn.named_parameters()}
    return output.detach(), [s.detach() for s in as_tuple(final)], grads


@pytest.mark.parametrize("mode", ALL)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_explicit_equals_fused(mode: str, num_layers: int, bidirectional: bool) -> None:
    """Same weights, same numbers. The peephole LSTM has no fused kernel: with its peephole
    weights at zero it must equal the fused LSTM."""
    torch.manual_seed(0)
    fused_mode = "lstm" if mode == "peephole_lstm" else mode
    fused = Recurrent(fused_mode, E, H, num_layers, bidirectional=bidirectional)  # type: ignore[arg-type]
    explicit = Recurrent(
        mode,  # type: ignore[arg-type]
        E,
        H,
        num_layers,
        bidirectional=bidirectional,
        force_explicit=True,
    )
    explicit.load_state_dict(fused.state_dict(), strict=mode != "peephole_lstm")
    with torch.no_grad():
        for name, param in explicit.named_parameters():
            if name.startswith("weight_c"):
                param.zero_()
    assert fused.fused and not explicit.fused
    x = torch.randn(B, T, E)
    for lengths in (None, LENGTHS):
        out_f, state_f, grads_f = run_and_grads(fused, x, lengths)
        out_e, state_e, grads_e = run_and_grads(explicit, x, lengths)
        torch.testing.assert_close(out_e, out_f, atol=1e-5, rtol=0)
        for a, b in zip(state_e, state_f, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        for name, grad in grads_f.items():
            torch.testing.assert_close(grads_e[name], grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", FUSABLE)
def test_fused_path_is_torch(mode: str) -> None:
    torch_cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(mode, nn.RNN)
    kwargs = {"nonlinearity": mode[4:]} if mode.startswith("rnn") else {}
    theirs = torch_cls(E, H, 2, batch_first=True, bidirectional=True, **kwargs)
    ours = Recurrent(mode, E, H, 2, bidirectional=True)  # type: ignore[arg-type]
    ours.load_state_dict(theirs.state_dict())  # same names, same layout
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(B, T, E)
    out_o, state_o = ours(x)
    out_t, state_t = theirs(x)
    torch.testing.assert_close(out_o, out_t, atol=0, rtol=0)
    for a, b in zip(as_tuple(state_o), as_tuple(state_t), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_peephole_equals_stepping_the_cells(num_layers: int, bidirectional: bool) -> None:
    torch.manual_seed(0)
    rnn = Recurrent("peephole_lstm", E, H, num_layers, bidirectional=bidirectional)
    with torch.no_grad():
        for name, param in rnn.named_parameters():
            if "weight_c" in name:
                param.uniform_(-1, 1)
    x = torch.randn(B, T, E)
    output, (h_n, c_n) = rnn(x, lengths=LENGTHS)
    directions = 2 if bidirectional else 1
    for b, length in enumerate(LENGTHS):
        layer_input = x[b, :length]  # (t, E), this sequence alone
        for layer in range(num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                cell = PeepholeLSTMCell(layer_input.size(1), H)
                cell.load_state_dict(
                    {name: getattr(rnn, name + suffix) for name in cell.state_dict()}
                )
                steps = layer_input.flip(0) if direction else layer_input
                state, hs = None, []
                for step in steps:
                    state = cell(step.unsqueeze(0), state)
                    hs.append(state[0][0])
                h_seq = torch.stack(hs)
                outputs.append(h_seq.flip(0) if direction else h_seq)
                k = layer * directions + direction
                torch.testing.assert_close(h_n[k, b], state[0][0], atol=1e-5, rtol=0)
                torch.testing.assert_close(c_n[k, b], state[1][0], atol=1e-5, rtol=0)
            layer_input = torch.cat(outputs, 1)
        torch.testing.assert_close(output[b, :length], layer_input, atol=1e-5, rtol=0)
        assert not output[b, length:].any()


@pytest.mark.parametrize("mode", ALL)
@pytest.mark.parametrize("force_explicit", [False, True])
def test_padded_batch_equals_each_sequence_alone(mode: str, force_explicit: bool) -> None:
    torch.manual_seed(0)
    rnn = Recurrent(mode, E, H, 2, bidirectional=True, force_explicit=force_explicit)  # type: ignore[arg-type]
    x = torch.randn(B, T, E)
    x_padded = x.clone()
    for b, length in enumerate(LENGTHS):
        x_padded[b, length:] = 1e3  # garbage in the padding must not leak
    output, state = rnn(x_padded, lengths=torch.tensor(LENGTHS))
    for b, length in enumerate(LENGTHS):
        alone_out, alone_state = rnn(x[b : b + 1, :length])
        torch.testing.assert_close(output[b : b + 1, :length], alone_out, atol=1e-5, rtol=0)
        assert not output[b, length:].any(), "padded positions must be zero"
        for s, s_alone in zip(as_tuple(state), as_tuple(alone_state), strict=True):
            torch.testing.assert_close(s[:, b : b + 1], s_alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ALL)
def test_gradcheck_explicit_path(mode: str) -> None:
    torch.manual_seed(0)
    rnn = Recurrent(mode, 2, 3, 2, bidirectional=True, force_explicit=True).double()  # type: ignore[arg-type]
    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in rnn.named_parameters()]

    def run(x: Tensor, h0: Tensor, c0: Tensor, *weights: Tensor) -> tuple[Tensor, ...]:
        state = (h0, c0) if "lstm" in mode else h0
        params = dict(zip(names, weights, strict=True))
        output, final = torch.func.functional_call(rnn, params, (x, state, [4, 1, 3]))
        return (output, *as_tuple(final))

    # fast mode (random projections of the Jacobian): every kernel has its full gradcheck in
    # test_cells.py; this one checks the layering, reversal, sorting and state gathering.
    assert torch.autograd.gradcheck(run, (x, h0, c0, *rnn.parameters()), fast_mode=True)


@pytest.mark.parametrize("force_explicit", [False, True])
def test_state_carries_across_chunks(force_explicit: bool) -> None:
    torch.manual_seed(0)
    rnn = Recurrent("lstm", E, H, 2, force_explicit=force_explicit)
    x = torch.randn(B, T, E)
    whole, (h, c) = rnn(x)
    first, state = rnn(x[:, :3])
    second, (h2, c2) = rnn(x[:, 3:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-6, rtol=0)
    torch.testing.assert_close(h2, h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c2, c, atol=1e-6, rtol=0)


@pytest.mark.parametrize("force_explicit", [False, True])
def test_time_major_layout(force_explicit: bool) -> None:
    torch.manual_seed(0)
    batch_first = Recurrent("gru", E, H, 2, bidirectional=True, force_explicit=force_explicit)
    time_major = Recurrent(
        "gru", E, H, 2, batch_first=False, bidirectional=True, force_explicit=force_explicit
    )
    time_major.load_state_dict(batch_first.state_dict())
    x = torch.randn(B, T, E)
    out_bf, h_bf = batch_first(x, lengths=LENGTHS)
    out_tm, h_tm = time_major(x.transpose(0, 1), lengths=LENGTHS)
    torch.testing.assert_close(out_tm.transpose(0, 1), out_bf, atol=1e-6, rtol=0)
    torch.testing.assert_close(h_tm, h_bf, atol=1e-6, rtol=0)


def test_residual_adds_each_upper_layers_input() -> None:
    torch.manual_seed(0)
    stacked = Recurrent("gru", H, H, 3, residual=True)
    assert stacked.fused and stacked.layerwise
    layers = [Recurrent("gru", H, H) for _ in range(3)]
    for k, layer in enumerate(layers):
        layer.load_state_dict(
            {name: getattr(stacked, f"{name[:-1]}{k}") for name in layer.state_dict()}
        )
    x = torch.randn(B, T, H)
    y = layers[0](x)[0]
    for layer in layers[1:]:
        y = layer(y)[0] + y
    torch.testing.assert_close(stacked(x)[0], y, atol=1e-6, rtol=0)


def test_forget_bias_initialises_both_paths_alike() -> None:
    rnn = Recurrent("lstm", E, H, 2, bidirectional=True, forget_bias=2.0)
    for names in rnn._all_weights:
        total = getattr(rnn, names[2]) + getattr(rnn, names[3])
        assert torch.equal(total[H : 2 * H], torch.full((H,), 2.0))
    assert rnn.fused  # only the initialisation differs from torch's LSTM
    chrono = Recurrent("lstm", E, H, 2, chrono_init=30)
    for names in chrono._all_weights:
        b_i, b_f = getattr(chrono, names[2])[: 2 * H].view(2, H)
        torch.testing.assert_close(b_i, -b_f)
        assert not getattr(chrono, names[3])[: 2 * H].any()


@pytest.mark.parametrize("dropout_mode", ["standard", "locked"])
def test_dropout_between_layers_only_in_training(dropout_mode: str) -> None:
    torch.manual_seed(0)
    rnn = Recurrent("lstm", E, H, 2, dropout=0.5, dropout_mode=dropout_mode)  # type: ignore[arg-type]
    plain = Recurrent("lstm", E, H, 2)
    plain.load_state_dict(rnn.state_dict())
    assert rnn.layerwise == (dropout_mode == "locked")
    x = torch.randn(B, T, E)
    rnn.eval()
    torch.testing.assert_close(rnn(x)[0], plain(x)[0], atol=1e-6, rtol=0)
    rnn.train()
    assert not torch.allclose(rnn(x)[0], plain(x)[0])
    # one layer: dropout has nothing to act on (and torch's warning is not raised)
    single = Recurrent("lstm", E, H, 1, dropout=0.5).train()
    reference = Recurrent("lstm", E, H, 1)
    reference.load_state_dict(single.state_dict())
    torch.testing.assert_close(single(x)[0], reference(x)[0])


def test_locked_dropout_shares_one_mask_over_time() -> None:
    torch.manual_seed(0)
    x = torch.ones(8, 50, 16)
    y = locked_dropout(x, 0.5, training=True)
    assert torch.equal(y, y[:, :1].expand_as(y))  # same mask at every step
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    y_tm = locked_dropout(x.transpose(0, 1), 0.5, training=True, batch_first=False)
    assert torch.equal(y_tm, y_tm[:1].expand_as(y_tm))
    module = LockedDropout(0.5).eval()
    assert torch.equal(module(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        LockedDropout(1.0)


def test_state_dict_round_trip_between_paths_and_with_torch() -> None:
    torch.manual_seed(0)
    theirs = nn.LSTM(E, H, 2, batch_first=True)
    explicit = Recurrent("lstm", E, H, 2, force_explicit=True)
    explicit.load_state_dict(theirs.state_dict())
    x = torch.randn(B, T, E)
    torch.testing.assert_close(explicit(x)[0], theirs(x)[0], atol=1e-6, rtol=0)
    peephole = Recurrent("peephole_lstm", E, H, 2)
    assert {k for k in peephole.state_dict() if "weight_c" in k} == {
        f"weight_c{g}_l{k}" for g in "ifo" for k in (0, 1)
    }
    restored = Recurrent("peephole_lstm", E, H, 2)
    restored.load_state_dict(peephole.state_dict())
    torch.testing.assert_close(restored(x)[0], peephole(x)[0], atol=0, rtol=0)


def test_gradient_taps_switch_to_the_explicit_path() -> None:
    rnn = Recurrent("lstm", E, H, 2)
    x = torch.randn(B, T, E)
    with rnn.gradient_taps() as taps:
        output, _ = rnn(x, lengths=LENGTHS)
    assert len(taps) == 1 and taps[0].shape == (2, 1, B, T, H)
    (grad,) = torch.autograd.grad(output.sum(), taps)
    for b, length in enumerate(LENGTHS):
        assert not grad[:, :, b, length:].any()  # nothing reaches padded steps
        assert grad[:, :, b, :length].abs().sum() > 0
    assert rnn._taps is None  # closed again: the fused path is back


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown recurrent cell 'lstn'"):
        Recurrent("lstn", E, H)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="hidden_size"):
        Recurrent("lstm", E, 0)
    with pytest.raises(ConfigError, match="num_layers"):
        Recurrent("lstm", E, H, 0)
    with pytest.raises(ConfigError, match="dropout must be"):
        Recurrent("lstm", E, H, 2, dropout=1.0)
    with pytest.raises(ConfigError, match="dropout_mode"):
        Recurrent("lstm", E, H, 2, dropout_mode="zoneout")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="forget_bias"):
        Recurrent("gru", E, H, forget_bias=1.0)
    with pytest.raises(ConfigError, match="chrono_init needs an LSTM"):
        Recurrent("rnn_tanh", E, H, chrono_init=10)
    with pytest.raises(ConfigError, match="not both"):
        Recurrent("lstm", E, H, forget_bias=1.0, chrono_init=10)
    with pytest.raises(ConfigError, match="T_max >= 3"):
        Recurrent("lstm", E, H, chrono_init=2)
    with pytest.raises(ConfigError, match="bptt_clip"):
        Recurrent("gru", E, H, bptt_clip=("norm", -1.0))


@pytest.mark.parametrize("force_explicit", [False, True])
def test_forward_errors(force_explicit: bool) -> None:
    rnn = Recurrent("lstm", E, H, 2, force_explicit=force_explicit)
    x = torch.randn(B, T, E)
    cases = [
        ((torch.randn(T, E),), {}, r"input of shape \(B, T, input_size\)"),
        ((torch.randn(B, T, E + 1),), {}, "expected input_size=3"),
        ((x.double(),), {}, "dtype torch.float64 does not match"),
        ((torch.randn(B, 0, E),), {}, "empty"),
        ((x,), {"lengths": [7, 8, 1, 1]}, "must not exceed the padded length T=7"),
        ((x,), {"lengths": [7, 0, 1, 1]}, "zero-length"),
        ((x,), {"lengths": [7, 1, 1]}, r"one entry per sequence, shape \(4,\)"),
        ((x,), {"lengths": torch.tensor([7.0, 1, 1, 1])}, "integers"),
        ((x, torch.zeros(2, B, H)), {}, r"tuple \(h, c\)"),
        ((x, (torch.zeros(2, B + 1, H),) * 2), {}, "holds 5 sequences but the input has 4"),
        ((x, (torch.zeros(1, B, H),) * 2), {}, r"\(num_layers \* num_directions, B, H\)"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            rnn(*args, **kwargs)
    gru = Recurrent("gru", E, H, force_explicit=force_explicit)
    with pytest.raises(ValueError, match="one tensor h"):
        gru(x, (torch.zeros(1, B, H), torch.zeros(1, B, H)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(
    "options", [{"residual": True}, {"dropout": 0.3, "dropout_mode": "locked"}]
)
def test_layerwise_fused_equals_explicit(cell: str, options: dict[str, object]) -> None:
    """Locked dropout / residual stacks run torch's kernel layer by layer: same outputs,
    final states and gradients as the explicit path, padding included. (With padding the
    explicit path sorts the batch before drawing dropout masks, so the dropout case runs
    unpadded to share masks.)"""
    torch.manual_seed(0)
    fused = Recurrent(cell, H, H, 3, bidirectional=False, **options)  # type: ignore[arg-type]
    explicit = Recurrent(cell, H, H, 3, force_explicit=True, **options)  # type: ignore[arg-type]
    explicit.load_state_dict(fused.state_dict())
    assert fused.layerwise and not explicit.fused
    x = torch.randn(B, T, H)
    for module in (fused, explicit):
        module.train()
    results = []
    for module in (fused, explicit):
        torch.manual_seed(1)  # same dropout masks
        out, state = module(x, lengths=LENGTHS if "residual" in options else None)
        out.square().sum().backward()
        results.append((out, state, [p.grad.clone() for p in module.parameters()]))
    (out_a, state_a, grads_a), (out_b, state_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(state_a, state_b, atol=1e-5, rtol=1e-4)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ALL)
@pytest.mark.parametrize("force_explicit", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_cpu_bf16_autocast_trains_every_path(
    mode: str, force_explicit: bool, lengths: list[int] | None
) -> None:
    """`trainer.precision=bf16` on a CPU: forward and backward run (the fused LSTM falls back
    to fp32 where oneDNN has no bf16 LSTM; the explicit recurrence runs in the weights'
    dtype) and give the fp32 numbers to bf16 precision."""
    torch.manual_seed(0)
    rnn = Recurrent(mode, E, H, num_layers=2, force_explicit=force_explicit)  # type: ignore[arg-type]
    x = torch.randn(B, T, E)
    ref_out, _, ref_grads = run_and_grads(rnn, x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, final, grads = run_and_grads(rnn, x, lengths)
    assert torch.allclose(out.float(), ref_out, atol=0.05)
    assert all(torch.isfinite(s).all() for s in final)
    for name, grad in grads.items():
        assert grad is not None and torch.allclose(grad.float(), ref_grads[name], atol=0.05), name
