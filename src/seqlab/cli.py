"""The `seqlab` command line: train | search | eval | predict | generate | plot | report | bench |
data | configs | demo.

Every command takes ``--json`` (the last line on stdout is one JSON object with the
results) and ``--debug`` (show tracebacks). Errors a user can fix print one line on
stderr and exit non-zero.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from seqlab import __version__
from seqlab.errors import SeqlabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="seqlab: neural sequence models for NLP, from the equations to published numbers.",
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list, info, path, verify.")
app.add_typer(data_app, name="data")
configs_app = typer.Typer(
    help="The configs shipped with seqlab: list them, show one (seqlab configs show NAME)."
)
app.add_typer(configs_app, name="configs")

stderr = Console(stderr=True)
stdout = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = typer.Option(False, "--json", help="Print the results as one JSON line last.")
DebugOpt = typer.Option(False, "--debug", help="Show full tracebacks on errors.")
DeviceOpt = typer.Option(
    None, "--device", help="Run on this device (cpu, cuda, cuda:N, mps) instead of the trained one."
)

ThreadsOpt = typer.Option(
    0, "--threads", min=0, help="torch intra-op threads (0: torch's default; 1 on a shared CPU)."
)


def _set_threads(threads: int) -> None:
    from seqlab.train.trainer import set_threads

    set_threads(threads)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")  # one unwrapped line, whatever the terminal width
    raise typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn SeqlabError (and unreadable files) into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            return func(*args, **kwargs)
        except SeqlabError as err:
            if debug:
                raise
            _fail(str(err), err.exit_code)
        except OSError as err:
            if debug:
                raise
            _fail(f"{getattr(err, 'filename', None) or ''}: {err.strerror or err}", 2)
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def emit_json(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, default=float) + "\n")
        sys.stdout.flush()


def show_metrics(title: str, metrics: dict[str, Any]) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int | str):
            table.add_row(key, str(value))
    stdout.print(table)


# ------------------------------------------------------------------------------ train


@app.command()
@user_errors
def train(
    config: Path | None = typer.Argument(
        None, help="Experiment YAML, or the name of a shipped config (seqlab configs)."
    ),
    sets: list[str] = typer.Option([], "--set", help="Override a key: --set trainer.epochs=3"),
    out: Path | None = typer.Option(None, "--out", help="Run dir (default runs/<config name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    force: bool = typer.Option(False, "--force", help="Replace a run already in --out."),
    nproc: int = typer.Option(
        1,
        "--nproc",
        help="Train with N processes on this machine (DistributedDataParallel: gloo on the "
        "CPU, nccl on CUDA); trainer.batch_size is the global batch.",
    ),
    seeds: str | None = typer.Option(
        None,
        "--seeds",
        help="Train once per seed (1-5 or 1,3,7) into OUT/seed_N; report mean ± std.",
    ),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Train a model; writes config.yaml, metrics.jsonl, checkpoints and metrics.json."""
    if seeds is not None:
        _train_seeds(config, sets, out, seeds, resume=resume, force=force, as_json=as_json)
        return
    from seqlab.errors import ConfigError
    from seqlab.loader import load_config
    from seqlab.provenance import Invocation
    from seqlab.rundir import RunDir
    from seqlab.runs import train as train_run
    from seqlab.train.trainer import Interrupted

    invocation = Invocation.from_cli(config, sets)
    if config is None:
        if not (resume and out is not None):
            raise ConfigError("give a CONFIG file (or --resume --out RUN_DIR)")
        config = RunDir(out).config
    cfg = load_config(config, sets)
    run_dir = out if out is not None else Path("runs") / config.stem
    if nproc > 1:
        metrics = _train_processes(nproc, cfg, run_dir, resume, force, invocation)
        show_metrics(f"{config.name} -> {run_dir} ({nproc} processes)", metrics)
        emit_json({k: v for k, v in metrics.items()} | {"run_dir": str(run_dir)}, as_json)
        return
    try:
        metrics = train_run(
            cfg, run_dir, resume=resume, force=force, console=stderr, invocation=invocation
        )
    except Interrupted as stop:
        stderr.print(str(stop))
        raise typer.Exit(130) from None
    if os.environ.get("RANK", "0") != "0":
        return  # torchrun: rank 0 prints the results
    show_metrics(f"{config.name} -> {run_dir}", metrics)
    emit_json(
        {k: v for k, v in metrics.items() if k != "per_fold"} | {"run_dir": str(run_dir)}, as_json
    )


def _train_processes(
    nproc: int, cfg: Any, run_dir: Path, resume: bool, force: bool, invocation: Any
) -> dict[str, Any]:
    """``train --nproc N``: N processes on this machine; rank 0 writes the metrics."""
    from torch.multiprocessing import ProcessExitedException

    from seqlab.rundir import RunDir
    from seqlab.runs import train_worker
    from seqlab.train import distributed

    try:
        distributed.spawn(nproc, train_worker, cfg, run_dir, resume, force, invocation)
    except ProcessExitedException as err:  # the process printed its error line
        raise typer.Exit(err.exit_code if err.exit_code > 0 else 1) from None
    result: dict[str, Any] = json.loads(RunDir(run_dir).metrics.read_text(encoding="utf-8"))
    return result


def _train_seeds(
    config: Path | None,
    sets: list[str],
    out: Path | None,
    seeds: str,
    *,
    resume: bool,
    force: bool,
    as_json: bool,
) -> None:
    from seqlab.errors import ConfigError
    from seqlab.report import to_markdown
    from seqlab.selection.seeds import parse_seeds, train_seeds

    if config is None:
        raise ConfigError("--seeds needs a CONFIG file")
    folder = out if out is not None else Path("runs") / config.stem
    result = train_seeds(
        config, sets, parse_seeds(seeds), folder, resume=resume, force=force, console=stderr
    )
    sys.stdout.write(to_markdown(result))
    stdout.print(f"table written to {folder / 'seeds.md'}", highlight=False)
    emit_json(result, as_json)


# ------------------------------------------------------------------------------ search


@app.command()
@user_errors
def search(
    config: Path = typer.Argument(
        ..., help="Experiment YAML, or the name of a shipped config (seqlab configs)."
    ),
    space: Path = typer.Option(
        ...,
        "--space",
        help="Search space YAML (key: {distribution}) or a shipped one (spaces/NAME).",
    ),
    trials: int | None = typer.Option(
        None, "--trials", help="Trials in the study in all (grid: default every point)."
    ),
    sampler: str = typer.Option("tpe", "--sampler", help="grid | random | tpe."),
    sets: list[str] = typer.Option([], "--set", help="Override a key in every trial."),
    out: Path | None = typer.Option(
        None, "--out", help="Search dir (default runs/search_<config name>)."
    ),
    seed: int = typer.Option(1, "--seed", help="The sampler's seed."),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Median pruning on dev."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Search hyper-parameters on dev (Optuna); never computes test. Resumable: run the
    same command again to continue the study."""
    from seqlab.selection.search import search as run_search

    folder = out if out is not None else Path("runs") / f"search_{config.stem}"
    result = run_search(
        config,
        space,
        folder,
        trials=trials,
        sampler=sampler,
        sets=sets,
        seed=seed,
        prune=prune,
        console=stderr,
    )
    # trials.md ends with "Test not computed" and the command that trains the best config.
    sys.stdout.write((folder / "trials.md").read_text(encoding="utf-8"))
    if not result["next"]:
        stdout.print("no trial completed", highlight=False)
    emit_json(result, as_json)


# ------------------------------------------------------------------------------ eval


@app.command("eval")
@user_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A trained run dir."),
    split: str = typer.Option("test", "--split", help="Split to evaluate (val, test)."),
    data: str | None = typer.Option(None, "--data", help="Evaluate on this file instead."),
    ref: str | None = typer.Option(
        None, "--ref", help="translate: reference translations of --data, line by line."
    ),
    sets: list[str] = typer.Option(
        [],
        "--set",
        help="Override a data.* / eval.* key of the run: --set data.eval_batch_size=1, "
        "data.beam_size=5, data.eval_block_size=256",
    ),
    device: str | None = DeviceOpt,
    threads: int = ThreadsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Evaluate the best weights of a run on a split or a file."""
    from seqlab.evaluation import evaluate_run

    _set_threads(threads)
    metrics = evaluate_run(
        run_dir, split=split, data_path=data, device=device, reference=ref, sets=sets
    )
    show_metrics(f"{run_dir} ({data or split})", metrics)
    emit_json(metrics, as_json)


@app.command()
@user_errors
def predict(
    run_dir: Path = typer.Argument(..., help="A trained run dir."),
    sources: list[str] | None = typer.Argument(
        None,
        help="Input file(s), one example per line ('-' or none: stdin); speech: wav files, "
        "captioning: .npy arrays, one example each.",
    ),
    analogy: tuple[str, str, str] | None = typer.Option(
        None, "--analogy", help="Word vectors: A B C -> the words nearest A - B + C."
    ),
    story: str | None = typer.Option(
        None, "--story", help="bAbI QA: a story file (bAbI format); answers its questions."
    ),
    beam: int | None = typer.Option(
        None, "--beam", help="translate: beam width (default: the run's data.beam_size)."
    ),
    sets: list[str] = typer.Option(
        [], "--set", help="Override a decoding key of the run: --set data.length_penalty=1"
    ),
    device: str | None = DeviceOpt,
    threads: int = ThreadsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Predict for each input line (labels, tags...) and print one output line each
    (bAbI QA: one line per question of the story; speech: the digits of each wav file;
    captioning: the caption of each .npy input)."""
    from seqlab.evaluation import predict_lines

    _set_threads(threads)
    count = 0
    queries = [" ".join(analogy)] if analogy else None
    inputs: str | list[str] = story if story is not None else (sources or "-")
    if beam is not None:
        sets = [*sets, f"data.beam_size={beam}"]
    for line in predict_lines(run_dir, inputs, queries, device=device, sets=sets):
        sys.stdout.write(line + "\n")
        count += 1
    emit_json({"predictions": count}, as_json)


@app.command()
@user_errors
def generate(
    run_dir: Path = typer.Argument(..., help="A trained language-model run dir."),
    prompt: str = typer.Option("", "--prompt", help="Text to continue."),
    max_tokens: int = typer.Option(200, "--max-tokens", help="How many tokens to generate."),
    temperature: float = typer.Option(
        0.8, "--temperature", help="Softmax temperature (0: greedy)."
    ),
    top_k: int = typer.Option(0, "--top-k", help="Sample only from the k most likely (0: all)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (1: all)."),
    beam: int = typer.Option(0, "--beam", help="Beam search with this beam size (0: sample)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    device: str | None = DeviceOpt,
    threads: int = ThreadsOpt,
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Generate text from a trained language model (streamed to stdout)."""
    from seqlab.evaluation import generate_stream

    _set_threads(threads)
    pieces = []
    stream = generate_stream(
        run_dir,
        device=device,
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        beam=beam,
        seed=seed,
    )
    for piece in stream:
        pieces.append(piece)
        if not as_json:
            sys.stdout.write(piece)
            sys.stdout.flush()
    text = "".join(pieces)
    sys.stdout.write((text if as_json else "") + "\n")
    emit_json({"text": text}, as_json)


@app.command()
@user_errors
def plot(
    run_dir: Path = typer.Argument(..., help="A run dir."),
    kind: str = typer.Option(
        "curves",
        "--kind",
        help="curves | gradient-flow | embeddings | confusion | tree | memory | attention | "
        "reconstruction | validation-curve | learning-curve | seed-curves",
    ),
    words: list[str] | None = typer.Option(
        None, "--words", help="Words to show (embeddings); repeat or comma-separate."
    ),
    fresh: bool | None = typer.Option(
        None, "--fresh", help="gradient-flow: a newly initialised model instead of the trained."
    ),
    text: str | None = typer.Option(
        None, "--text", help="tree: the sentence (RAE) or bracketed tree (tree models) to draw."
    ),
    story: str | None = typer.Option(
        None, "--story", help="memory: a bAbI story file; its last question is drawn."
    ),
    wav: str | None = typer.Option(
        None, "--wav", help="attention: a wav file for a speech run (any sample rate)."
    ),
    image: str | None = typer.Option(
        None, "--image", help="attention: a .npy image for a captioning run."
    ),
    param: str | None = typer.Option(
        None,
        "--param",
        help="validation-curve / learning-curve: the searched key on the x axis.",
    ),
    metric: list[str] | None = typer.Option(
        None, "--metric", help="seed-curves: a logged metric to draw (repeat for more panels)."
    ),
    out: Path | None = typer.Option(None, "--out", help="PNG path (default RUN_DIR/<kind>.png)."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Draw a figure of a run (learning curves, ...) as PNG."""
    from seqlab.plots import make_plot

    word_list = [w for item in words for w in item.split(",") if w] if words else None
    path = make_plot(
        run_dir,
        kind,
        out,
        words=word_list,
        fresh=fresh,
        text=text,
        story=story,
        wav=wav,
        image=image,
        param=param,
        metric=metric or None,
    )
    stdout.print(f"wrote {path}")
    emit_json({"path": str(path)}, as_json)


@app.command()
@user_errors
def bench(
    name: str = typer.Argument(..., help="Benchmark name (see `seqlab bench list`)."),
    quick: bool = typer.Option(False, "--quick", help="A small, fast version."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Run a speed/quality benchmark and print its table (and JSON)."""
    from seqlab.bench_registry import BENCHMARKS, run_benchmark

    if name == "list":
        for key in BENCHMARKS:
            stdout.print(key)
        return
    result = run_benchmark(name, quick=quick)
    show_metrics(f"bench {name}", result)
    emit_json(result, as_json)


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run dir for the demo."),
    sets: list[str] = typer.Option([], "--set", help="Override a demo config key."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Train the demo character language model on tiny Shakespeare and sample from it."""
    from seqlab.demo import run_demo

    result = run_demo(out, sets, stdout)
    emit_json(result, as_json)


@app.command()
@user_errors
def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run dirs, or folders holding run dirs."),
    metrics: list[str] = typer.Option(
        [],
        "--metric",
        help="Report this metric (repeatable; default: eval.metric's test and "
        "val counterparts, e.g. test_acc and val_acc).",
    ),
    markdown: bool = typer.Option(
        False, "--markdown", help="Print a markdown table (for docs/RESULTS.md)."
    ),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """One row per recipe: mean ± std over seeds, n, the command, the anchor (run.json)."""
    from seqlab.report import build_report, table_rows, to_markdown

    result = build_report(run_dirs, metrics or None)
    if markdown:
        sys.stdout.write(to_markdown(result))
    elif not as_json:
        header, cells = table_rows(result)
        shown = [i for i, column in enumerate(header) if column != "command"]
        table = Table(show_header=True)
        for i in shown:
            table.add_column(header[i], overflow="fold")
        for row in cells:
            table.add_row(*(row[i] for i in shown))
        stdout.print(table)
        for row in result["rows"]:  # whole, to copy: too long for a table cell
            stdout.print(f"{row['recipe']}: {row['command']}", highlight=False, soft_wrap=True)
    for skipped in result["skipped"]:
        stderr.print(f"skipped {skipped['run']} (status: {skipped['status']})", highlight=False)
    emit_json(result, as_json)


# ------------------------------------------------------------------------------ configs


@configs_app.callback(invoke_without_command=True)
@user_errors
def configs_list(ctx: typer.Context, as_json: bool = JsonOpt, debug: bool = DebugOpt) -> None:
    """Every shipped config, one line each: the name `seqlab train NAME` takes and the
    first comment line of the file."""
    if ctx.invoked_subcommand is not None:
        return
    from seqlab.shipped import shipped_configs

    rows = [{"name": c.name, "description": c.description} for c in shipped_configs()]
    width = max(len(row["name"]) for row in rows)
    sys.stdout.write("".join(f"{r['name']:<{width}}  {r['description']}\n" for r in rows))
    emit_json({"configs": rows}, as_json)


@configs_app.command("show")
@user_errors
def configs_show(
    name: str = typer.Argument(..., help="A shipped config (ptb_small, spaces/mr_l2)."),
    debug: bool = DebugOpt,
) -> None:
    """Print a shipped config (seqlab configs show ptb_small > mine.yaml copies it to edit)."""
    from seqlab.shipped import shipped_config

    sys.stdout.write(shipped_config(name).path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ data


@data_app.command("list")
@user_errors
def data_list(as_json: bool = JsonOpt, debug: bool = DebugOpt) -> None:
    """Every registered dataset, its licence and where it was found."""
    from seqlab.data.sources import list_datasets

    rows = list_datasets()
    columns = {"name": "name", "description": "description", "licence": "licence", "found": "where"}
    table = Table(show_header=True)
    for column in columns:
        table.add_column(column, overflow="fold" if column == "found" else "ellipsis")
    for row in rows:
        table.add_row(*(row[key] for key in columns.values()))
    stdout.print(table)
    emit_json({"datasets": rows}, as_json)


@data_app.command("info")
@user_errors
def data_info(name: str, as_json: bool = JsonOpt, debug: bool = DebugOpt) -> None:
    """Files, licence, url and sha256 of a dataset."""
    from seqlab.data.sources import info

    result = info(name)
    for key, value in result.items():
        stdout.print(f"[bold]{key}[/bold]: {value}", highlight=False)
    emit_json(result, as_json)


@data_app.command("path")
@user_errors
def data_path(
    name: str,
    role: str | None = typer.Argument(None, help="Which file (e.g. train)."),
    debug: bool = DebugOpt,
) -> None:
    """Print where a dataset (or one of its files) is found."""
    from seqlab.data.sources import dataset_dir, resolve

    sys.stdout.write(f"{resolve(name, role) if role else dataset_dir(name)}\n")


@data_app.command("verify")
@user_errors
def data_verify(name: str, as_json: bool = JsonOpt, debug: bool = DebugOpt) -> None:
    """Check the sha256 of every file of a dataset."""
    from seqlab.data.sources import verify
    from seqlab.errors import DataError

    result = verify(name)
    for file, ok in result.items():
        stdout.print(f"{'ok ' if ok else 'BAD'} {file}")
    emit_json({"files": result}, as_json)
    if not all(result.values()):
        raise DataError(f"{name}: some files do not match their sha256")


@data_app.command("corpus")
@user_errors
def data_corpus(
    out: Path = typer.Argument(..., help="Folder to write {dataset}.txt files into."),
    dataset: list[str] | None = typer.Option(
        None, "--dataset", "-d", help="A source (repeatable); default: all of them."
    ),
    lowercase: bool = typer.Option(True, help="Lower-case every token."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Write the training splits' text (PTB, EWT, SST, Multi30k) as a word2vec corpus."""
    from seqlab.data.corpus import build_corpus

    counts = build_corpus(out, dataset or None, lowercase=lowercase)
    for name, row in counts.items():
        stdout.print(
            f"{name}: {row['lines']} lines, {row['tokens']} tokens"
            + (f", {row['empty']} empty sentences skipped" if row["empty"] else ""),
            highlight=False,
        )
    total = sum(row["tokens"] for row in counts.values())
    stdout.print(f"{total} tokens in {out}", highlight=False)
    emit_json({"out": str(out), "sources": counts, "tokens": total}, as_json)


# ------------------------------------------------------------------------------ export, serve


@app.command("export")
@user_errors
def export_model(
    run_dir: Path = typer.Argument(..., help="A trained run dir."),
    fmt: str = typer.Option(..., "--format", help="onnx | torchscript | safetensors."),
    out: Path | None = typer.Option(None, "--out", help="Folder (default RUN_DIR/export)."),
    as_json: bool = JsonOpt,
    debug: bool = DebugOpt,
) -> None:
    """Export the best model of a run (verified against PyTorch, atol 1e-4)."""
    from seqlab.export.run import export_run

    manifest = export_run(run_dir, fmt, out)
    verified = manifest["verified"]
    wrote = manifest["path"] + (f" ({', '.join(manifest['files'])})" if "files" in manifest else "")
    stdout.print(
        f"wrote {wrote} ({manifest['task']}/{manifest['model']}); "
        f"max |exported - PyTorch| = {verified['max_abs_diff']:.2e} over "
        f"{verified['batches']} batches of variable length",
        highlight=False,
    )
    emit_json(manifest, as_json)


@app.command()
@user_errors
def serve(
    run_dir: Path = typer.Argument(..., help="A trained run dir."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (other than loopback: needs --api-key)."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="SEQLAB_API_KEY", help="Key every request must send (X-API-Key)."
    ),
    max_body_bytes: int = typer.Option(64 * 1024, "--max-body-bytes", help="Largest request body."),
    max_text_chars: int = typer.Option(2000, "--max-text-chars", help="Longest text or prompt."),
    max_tokens: int = typer.Option(
        256, "--max-tokens", help="Most tokens one /generate (or /translate output) may ask."
    ),
    max_sentences: int = typer.Option(16, "--max-sentences", help="Sentences of one /translate."),
    max_beam: int = typer.Option(8, "--max-beam", help="Widest beam one /translate may ask."),
    max_batch: int = typer.Option(32, "--max-batch", help="Requests run together at most."),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", help="Wait for a batch to fill."),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads (0: torch's default)."),
    device: str | None = DeviceOpt,
    debug: bool = DebugOpt,
) -> None:
    """Serve a run over HTTP: its task's endpoint, /health, /info, OpenAPI and a playground."""
    import torch
    import uvicorn

    from seqlab.evaluation import LoadedRun
    from seqlab.serve.app import create_app
    from seqlab.serve.settings import ServeSettings

    settings = ServeSettings(
        host=host,
        port=port,
        api_key=api_key or None,
        max_body_bytes=max_body_bytes,
        max_text_chars=max_text_chars,
        max_generate_tokens=max_tokens,
        max_sentences=max_sentences,
        max_beam=max_beam,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
    )
    settings.validate()  # before the run is loaded: a refused bind costs nothing
    if threads > 0:
        torch.set_num_threads(threads)
    run = LoadedRun.load(run_dir, device=device)
    service = create_app(run, settings)
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"serving {run_dir} ({run.cfg.task}) on http://{shown}:{port}/ (API: /docs)\n")
    uvicorn.run(service, host=host, port=port, log_level="warning")


def version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"seqlab {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """seqlab: neural sequence models for NLP."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
