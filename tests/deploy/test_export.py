"""``seqlab export``: every exportable task model, in each format, run by its own client
(onnxruntime, torch.jit.load, safetensors into a fresh model), gives the PyTorch model's
outputs within 1e-4 on batches of sentences of different lengths."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data.batching import pad_batch
from seqlab.decode import greedy, max_lengths
from seqlab.errors import ConfigError
from seqlab.evaluation import LoadedRun
from seqlab.export.adapters import EXPORTS, SEQ2SEQ
from seqlab.export.formats import FORMATS
from seqlab.export.run import ExportError, export_run, verify
from seqlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from seqlab.models.tagger import Tagger
from seqlab.tasks.babi_qa import collate
from seqlab.tasks.rnn_lm import prompt_ids
from seqlab.tasks.tagging import TaggedSentence
from seqlab.tasks.translate import BOS_INDEX, EOS_INDEX, PAD_INDEX

REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["great acting", "a dull tired mess and boring", "a joy", "funny", "bad smart film"]
ATOL = 1e-4


def session(manifest: dict[str, Any]) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        manifest["path"], options, providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("name", ["cnn", "bilstm"])
def test_onnx_classifiers_match_on_variable_length_batches(
    name: str, request: pytest.FixtureRequest
) -> None:
    run_dir: Path = request.getfixturevalue(name)
    manifest = export_run(run_dir, "onnx")
    assert manifest["verified"]["max_abs_diff"] <= ATOL
    run = LoadedRun.load(run_dir)
    onnx_model = session(manifest)
    for batch_texts in (SENTENCES, SENTENCES[1:2], SENTENCES[::-1][:3]):
        batch = run.task.make_batch(run.cfg, run.data, [t.split() for t in batch_texts], [0] * 9)
        with torch.no_grad():
            expected = run.model.logits(batch).numpy()
        (got,) = onnx_model.run(
            None, {"ids": batch.words.ids.numpy(), "lengths": batch.words.lengths.numpy()}
        )
        np.testing.assert_allclose(got, expected, atol=ATOL)
        assert (got.argmax(1) == expected.argmax(1)).all()
    # a sentence alone gives the numbers it gets inside a padded batch
    alone = run.task.make_batch(run.cfg, run.data, [SENTENCES[2].split()], [0])
    (single,) = onnx_model.run(
        None, {"ids": alone.words.ids.numpy(), "lengths": alone.words.lengths.numpy()}
    )
    batch = run.task.make_batch(run.cfg, run.data, [t.split() for t in SENTENCES], [0] * 5)
    (padded,) = onnx_model.run(
        None, {"ids": batch.words.ids.numpy(), "lengths": batch.words.lengths.numpy()}
    )
    np.testing.assert_allclose(padded[2], single[0], atol=ATOL)
    written = json.loads((run_dir / "export" / "model.json").read_text())
    assert [spec["name"] for spec in written["inputs"]] == ["ids", "lengths"]
    assert {"vocab.json", "labels.json"} <= set(written["vocabularies"])
    assert (run_dir / "export" / "labels.json").is_file()


def viterbi(
    emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> list[int]:
    """Best tag path of one sentence (T, K) from the exported CRF scores."""
    score = start + emissions[0]
    back = []
    for t in range(1, len(emissions)):
        total = score[:, None] + transitions + emissions[t][None, :]
        back.append(total.argmax(0))
        score = total.max(0)
    best = [int((score + end).argmax())]
    for pointers in reversed(back):
        best.append(int(pointers[best[-1]]))
    return best[::-1]


@pytest.mark.parametrize("name", ["tagger_crf", "tagger_cnn"])
def test_onnx_tagger_emissions_and_crf_decoding_match(
    name: str, request: pytest.FixtureRequest
) -> None:
    run_dir: Path = request.getfixturevalue(name)
    manifest = export_run(run_dir, "onnx")
    run = LoadedRun.load(run_dir)
    tagger: Tagger = run.model  # type: ignore[assignment]
    sentences = [("the", "cat", "runs", "."), ("dogs",), ("a", "dog", "sleeps", "now", "!")]
    batch = run.task.make_batch(run.cfg, run.data, [TaggedSentence(s, ()) for s in sentences])
    with torch.no_grad():
        expected = tagger.emissions(batch).numpy()
        predicted = tagger.predict(batch)
    names = [spec["name"] for spec in manifest["inputs"]]
    feeds = {
        "ids": batch.words.ids,
        "lengths": batch.words.lengths,
        "chars": batch.chars,
        "char_lengths": batch.char_lengths,
    }
    outputs = session(manifest).run(None, {k: feeds[k].numpy() for k in names})
    mask = batch.words.mask.numpy()
    np.testing.assert_allclose(outputs[0][mask], expected[mask], atol=ATOL)
    if tagger.crf is not None:
        _, transitions, start, end = outputs
        for row, words in enumerate(sentences):
            path = viterbi(outputs[0][row, : len(words)], transitions, start, end)
            assert path == predicted[row, : len(words)].tolist()


def test_onnx_language_models_generate_the_same_tokens(lm_word: Path, lm_char: Path) -> None:
    for run_dir, prompt in ((lm_word, "the cat"), (lm_char, "the d")):
        manifest = export_run(run_dir, "onnx")
        run = LoadedRun.load(run_dir)
        onnx_model = session(manifest)
        ids = prompt_ids(run.data, prompt)
        with torch.no_grad():
            expected = list(greedy(run.model, ids, 12))  # type: ignore[arg-type]
        rnn = run.model.rnn  # type: ignore[attr-defined]
        zeros = np.zeros((rnn.num_layers, 1, rnn.hidden_size), dtype=np.float32)
        names = [spec["name"] for spec in manifest["inputs"]]
        state = [zeros] * (len(names) - 1)
        tokens, step = [], ids.numpy()
        for _ in range(12):
            logits, *state = onnx_model.run(None, dict(zip(names, [step, *state], strict=True)))
            tokens.append(int(logits[0, -1].argmax()))
            step = np.array([[tokens[-1]]])
        assert tokens == expected
        # a batch of streams, a window of 9 steps, from a given state
        batch = torch.randint(
            0, len(run.data.vocab), (3, 9), generator=torch.Generator().manual_seed(0)
        )
        with torch.no_grad():
            logits, _ = run.model(batch)
        got = onnx_model.run(
            None,
            dict(
                zip(
                    names,
                    [
                        batch.numpy(),
                        *[np.zeros((rnn.num_layers, 3, rnn.hidden_size), np.float32)]
                        * (len(names) - 1),
                    ],
                    strict=True,
                )
            ),
        )[0]
        np.testing.assert_allclose(got, logits.numpy(), atol=ATOL)


def test_onnx_memory_network_answers_and_attends_as_pytorch(babi: Path) -> None:
    manifest = export_run(babi, "onnx")
    run = LoadedRun.load(babi)
    examples = run.data.splits["test"]
    for chosen in (examples[:7], examples[3:4]):
        batch = collate(chosen)
        with torch.no_grad():
            logits, attention = run.model(batch)
        got_logits, got_attention = session(manifest).run(
            None, {"story": batch.story.numpy(), "question": batch.question.numpy()}
        )
        np.testing.assert_allclose(got_logits[:, 1:], logits[:, 1:].numpy(), atol=ATOL)
        np.testing.assert_allclose(got_attention, attention.numpy(), atol=ATOL)
        assert (got_logits.argmax(1) == logits.argmax(1).numpy()).all()


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("torchscript", "bilstm"),
        ("torchscript", "babi"),
        ("safetensors", "tagger_crf"),
        ("safetensors", "lm_word"),
    ],
)
def test_torchscript_and_safetensors_verify(
    fmt: str, name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    run_dir: Path = request.getfixturevalue(name)
    manifest = export_run(run_dir, fmt, tmp_path)
    assert manifest["verified"]["max_abs_diff"] <= ATOL and manifest["verified"]["batches"] >= 3
    path = Path(manifest["path"])
    assert path.parent == tmp_path and path.is_file()
    if fmt == "safetensors":
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata()
            assert json.loads(meta["task"]) == manifest["task"]
            assert all(not k.endswith("_extra_state") for k in handle.keys())  # noqa: SIM118
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path))
        run = LoadedRun.load(run_dir)
        if name == "bilstm":
            batch = run.task.make_batch(run.cfg, run.data, [t.split() for t in SENTENCES], [0] * 5)
            (got,) = module(batch.words.ids, batch.words.lengths)
            torch.testing.assert_close(got, run.model.logits(batch), atol=ATOL, rtol=0)


def test_cli_export_and_clear_errors(bilstm: Path, tmp_path: Path, runs_root: Path) -> None:
    result = CliRunner().invoke(
        app, ["export", str(bilstm), "--format", "onnx", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["verified"]["max_abs_diff"] <= ATOL and (tmp_path / "model.onnx").is_file()
    result = CliRunner().invoke(app, ["export", str(bilstm), "--format", "tflite"])
    assert result.exit_code != 0 and "unknown export format 'tflite'" in result.output
    assert "lm_rnn/rnn" in EXPORTS and "classify/cnn" in EXPORTS


def test_explicit_recurrent_loops_are_refused(make_lm: Any, runs_root: Path) -> None:
    """A peephole LSTM runs the per-step loop, which tracing would unroll to one length."""
    run_dir = make_lm(runs_root, "char", "peephole_lstm", 1)
    with pytest.raises(ExportError, match="explicit per-step loop"):
        export_run(run_dir, "onnx")
    assert not (run_dir / "export" / "model.onnx").exists()
    with pytest.raises(ConfigError, match="unknown export format"):
        export_run(run_dir, "pickle")


def test_onnx_transformer_lm_matches_and_generates_the_same_tokens(lm_transformer: Path) -> None:
    manifest = export_run(lm_transformer, "onnx")
    assert manifest["verified"]["max_abs_diff"] <= ATOL
    run = LoadedRun.load(lm_transformer)
    onnx_model = session(manifest)
    generator = torch.Generator().manual_seed(0)
    for batch, steps in ((3, 9), (1, 12), (5, 2)):  # windows up to block_size
        ids = torch.randint(0, len(run.data.vocab), (batch, steps), generator=generator)
        with torch.no_grad():
            logits, _ = run.model(ids)
        (got,) = onnx_model.run(None, {"ids": ids.numpy()})
        np.testing.assert_allclose(got, logits.numpy(), atol=ATOL)
    # greedy through the exported window (re-read whole, cropped to the block) equals
    # decode.greedy's, which runs the model's cached steps
    prompt = prompt_ids(run.data, "the cat")
    with torch.no_grad():
        expected = list(greedy(run.model, prompt, 15))  # type: ignore[arg-type]
    context, tokens = prompt.numpy(), []
    for _ in range(15):
        (logits,) = onnx_model.run(None, {"ids": context[:, -12:]})
        tokens.append(int(logits[0, -1].argmax()))
        context = np.concatenate([context, [[tokens[-1]]]], axis=1)
    assert tokens == expected


def onnx_greedy(
    encoder: onnxruntime.InferenceSession,
    step: onnxruntime.InferenceSession,
    source: np.ndarray,
    lengths: np.ndarray,
    limits: list[int],
) -> tuple[list[list[int]], list[list[np.ndarray]]]:
    """Greedy decoding of a batch through the two exported graphs, as a client would run
    them (all rows every step; a row's output ends at EOS or its limit)."""
    memory, *state = encoder.run(None, {"source": source, "lengths": lengths})
    names = [item.name for item in step.get_inputs()]
    state_names = names[3:]  # after tokens, memory, lengths
    keys = dict(zip(state_names, state, strict=True)).pop("keys", None)
    tokens = np.full(len(source), BOS_INDEX)
    outputs: list[list[int]] = [[] for _ in source]
    weights: list[list[np.ndarray]] = [[] for _ in source]
    done = [False] * len(source)
    for t in range(max(limits)):
        feeds = {"tokens": tokens, "memory": memory, "lengths": lengths}
        feeds |= dict(zip(state_names, [*state[: len(state_names) - 1], keys], strict=True))
        logits, *new_state, attention = step.run(None, feeds)
        state = [*new_state, keys]
        tokens = logits.argmax(-1)
        for row, token in enumerate(tokens.tolist()):
            if done[row]:
                continue
            weights[row].append(attention[row])
            if token == EOS_INDEX:
                done[row] = True
            else:
                outputs[row].append(token)
                done[row] = t + 1 >= limits[row]
    return outputs, weights


def test_onnx_encoder_and_decoder_step_translate_as_pytorch(translate: Path) -> None:
    """The translation model as two ONNX graphs: greedy decoding of a batch of sentences of
    different lengths through them gives the task's own greedy outputs, step attention
    included."""
    manifest = export_run(translate, "onnx")
    assert manifest["files"] == ["decoder_step.onnx", "encoder.onnx"]
    assert {"vocab_de.json", "vocab_en.json"} <= set(manifest["vocabularies"])
    parts = manifest["parts"]
    assert [s["name"] for s in parts["encoder"]["outputs"]] == ["memory", "h", "keys"]
    assert [s["name"] for s in parts["decoder_step"]["outputs"]] == ["logits", "h_next", "weights"]
    run = LoadedRun.load(translate)
    task: Any = run.task
    lines = ["Der rot hund läuft im park.", "Der mann schläft.", "Der groß katze springt schnell"]
    ids, _, _ = task.encode_sources(run.cfg, run.data, lines)
    expected = task.translate_ids(run.cfg, run.model, run.data, ids)
    batch = pad_batch(ids, PAD_INDEX)
    limits = max_lengths(batch.lengths, run.cfg.data.max_length_ratio, 10).tolist()
    folder = translate / "export"
    encoder = session({"path": str(folder / "encoder.onnx")})
    step = session({"path": str(folder / "decoder_step.onnx")})
    tokens, weights = onnx_greedy(encoder, step, batch.ids.numpy(), batch.lengths.numpy(), limits)
    assert tokens == [list(d.tokens) for d in expected]
    assert task.detokenise(run.data, tokens[0]) == "The red dog runs in the park."
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_allclose(np.stack(got), want.attention.numpy(), atol=ATOL)


@pytest.mark.parametrize(
    "config",
    [
        {"cell": "lstm", "attention": "general", "attention_style": "luong",
         "input_feeding": True, "encoder_layers": 2, "decoder_layers": 2},
        {"cell": "gru", "attention": "none", "reverse_source": True, "bidirectional": False},
        {"cell": "rnn_tanh", "attention": "dot", "attention_style": "luong",
         "encoder_hidden_size": 12},
    ],
)  # fmt: skip
def test_encoder_decoder_configurations_export_verified(
    config: dict[str, Any], tmp_path: Path
) -> None:
    """Every state the decoder may carry (LSTM cell, input feeding, precomputed keys or
    none, no memory at all) exports and reproduces the model on variable-length batches."""
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(
        **(
            {
                "embedding_size": 10,
                "encoder_hidden_size": 8,
                "hidden_size": 24,
                "attention_size": 6,
                "dropout": 0.0,
            }
            | config
        )  # fmt: skip
    )
    model = Seq2Seq(cfg, source_vocab=17, target_vocab=19, pad_index=PAD_INDEX).eval()
    for name, adapter in SEQ2SEQ.parts:
        example = adapter.example(model, (4, 2, 3), torch.Generator().manual_seed(1))
        path = tmp_path / f"{name}.onnx"
        onnx = FORMATS.get("onnx")
        onnx.write(adapter.wrap(model).eval(), adapter, model, example, path, {})
        runner = onnx.load(path, adapter, lambda: model)
        worst, batches = verify(runner, adapter, model)
        assert worst <= ATOL and batches == 4, (name, worst)
        names = [spec.name for spec in (*adapter.inputs(model), *adapter.outputs(model))]
        assert ("c" in names) == (cfg.cell == "lstm") and ("feed" in names) == cfg.input_feeding
        if name == "decoder_step":
            assert ("memory" in names) == (cfg.attention != "none")
            assert ("keys" in names) == (cfg.attention in ("general", "additive"))


def test_models_without_a_faithful_export_say_so(tmp_path: Path) -> None:
    """Speech (LAS): its listener's explicit loops and parity test would be traced to one
    length. The command says so in one line, exit code 2, before reading any data."""
    run_dir = tmp_path / "las"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((REPO / "configs" / "fsdd_las.yaml").read_text())
    result = CliRunner().invoke(app, ["export", str(run_dir), "--format", "onnx"])
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "speech/las cannot be exported faithfully: its pyramidal listener" in lines[0]
    assert not (run_dir / "export").exists()
    assert {"lm_rnn/transformer", "translate/seq2seq"} <= set(EXPORTS.names())
