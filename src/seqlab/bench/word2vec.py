"""`seqlab bench word2vec`: seqlab's word2vec against gensim 4 in the same process.

Three contenders train on PTB's ptb.train.txt (887,521 words, one sentence per line)
with identical settings: dim 100, window 5, negative 5, min_count 5, sample 1e-3, 5
epochs, 2 worker threads, alpha 0.025 -> 0.0001; first skip-gram, then CBOW (mean):
seqlab, gensim fed through ``LineSentence`` (a Python iterator, under the GIL) and gensim's
own fast path, ``corpus_file=`` (each worker thread reads its part of the file in C).
Words/s is corpus words x epochs divided by the wall time of training alone
(vocabulary building and numba compilation excluded; all stream the file every epoch).
Each repeat runs the three in a rotated order (seqlab first, then second, then third);
``speed_ratio`` is the median over repeats of seqlab's words/s divided by gensim
``LineSentence``'s, ``speed_ratio_corpus_file`` the same against ``corpus_file``. The
thread scaling (skip-gram) is measured in the same way: seqlab and gensim
``corpus_file`` at 1 worker beside the runs at ``workers``, alternating;
``seqlab_scaling`` = words/s at ``workers`` / words/s at 1 (``gensim_corpus_file_scaling``
likewise). Quality (3CosAdd analogy accuracy on
questions-words restricted to the top 300k words, WordSim-353 Spearman) is the mean (and
``*_std`` the standard deviation) over the runs, which use seeds 1, 2, 3, ...,
evaluated by :mod:`seqlab.embeddings.evaluate`, which reproduces gensim's
``evaluate_word_analogies`` / ``evaluate_word_pairs`` numbers.

PTB is tiny for word2vec (10k-word vocabulary, under 1M tokens): analogy accuracy is
around 3% and only ~4,600 of the 19,544 questions are in its vocabulary, so the quality
numbers say "same algorithm", not "good vectors".

Usage: ``python -m seqlab.bench.word2vec [--quick] [--repeats N] [--json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from seqlab.bench.metadata import bench_metadata
from seqlab.data.sources import resolve
from seqlab.embeddings.evaluate import evaluate_analogies, evaluate_similarity
from seqlab.embeddings.vectors_io import WordVectors
from seqlab.embeddings.w2v_vocab import build_vocab
from seqlab.embeddings.word2vec import Word2Vec, Word2VecConfig, warm_up

Architecture = Literal["skipgram", "cbow"]


@dataclass(frozen=True)
class _Run:
    words_per_s: float
    analogy: float
    ws353: float


@dataclass(frozen=True)
class _Files:
    corpus: Path
    analogies: Path
    wordsim: Path


def _quality(wv: WordVectors, files: _Files, words_per_s: float) -> _Run:
    return _Run(
        words_per_s,
        evaluate_analogies(wv, files.analogies).accuracy,
        evaluate_similarity(wv, files.wordsim).spearman,
    )


def _train_seqlab(files: _Files, config: Word2VecConfig) -> _Run:
    model = Word2Vec(config, build_vocab(files.corpus, config.min_count))
    stats = model.train(files.corpus)
    return _quality(model.wv, files, stats.words_per_s)


def _train_gensim(files: _Files, config: Word2VecConfig, corpus_file: bool = False) -> _Run:
    from gensim.models import Word2Vec as GensimWord2Vec
    from gensim.models.word2vec import LineSentence

    model = GensimWord2Vec(
        vector_size=config.dim,
        window=config.window,
        min_count=config.min_count,
        sample=config.sample,
        negative=config.negative,
        hs=int(config.hs),
        sg=int(config.architecture == "skipgram"),
        cbow_mean=int(config.cbow_mean),
        alpha=config.alpha,
        min_alpha=config.min_alpha,
        epochs=config.epochs,
        workers=config.workers,
        seed=config.seed,
    )
    if corpus_file:
        model.build_vocab(corpus_file=str(files.corpus))
        started = time.perf_counter()
        _, raw_words = model.train(
            corpus_file=str(files.corpus),
            total_examples=model.corpus_count,
            total_words=model.corpus_total_words,
            epochs=config.epochs,
        )
    else:
        corpus = LineSentence(str(files.corpus))
        model.build_vocab(corpus)
        started = time.perf_counter()
        _, raw_words = model.train(corpus, total_examples=model.corpus_count, epochs=config.epochs)
    seconds = time.perf_counter() - started
    wv = WordVectors(model.wv.index_to_key, model.wv.vectors)
    return _quality(wv, files, raw_words / seconds)


CONTENDERS: dict[str, Callable[[_Files, Word2VecConfig], _Run]] = {
    "seqlab": _train_seqlab,
    "gensim": _train_gensim,
    "gensim_corpus_file": lambda files, config: _train_gensim(files, config, corpus_file=True),
}


def _rounds(
    files: _Files, config: Word2VecConfig, repeats: int, names: list[str]
) -> dict[str, list[_Run]]:
    """``repeats`` rounds of every contender in ``names`` (seed = round + 1); each round
    starts one place further along the list, so each goes first, second, ... in turn."""
    runs: dict[str, list[_Run]] = {name: [] for name in names}
    for repeat in range(repeats):
        config = dataclasses.replace(config, seed=repeat + 1)
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(CONTENDERS[name](files, config))
    return runs


def _compare(files: _Files, config: Word2VecConfig, repeats: int, tag: str) -> dict[str, float]:
    """The three contenders ``repeats`` times in rotated order; medians of speed, means of
    quality. Keys are ``{tag}speed_ratio``, ``{tag}speed_ratio_corpus_file``,
    ``seqlab_{tag}words_per_s`` and so on."""
    runs = _rounds(files, config, repeats, list(CONTENDERS))
    ours = runs["seqlab"]

    def ratio(theirs: list[_Run]) -> float:
        return statistics.median(
            a.words_per_s / b.words_per_s for a, b in zip(ours, theirs, strict=True)
        )

    result = {
        f"{tag}speed_ratio": ratio(runs["gensim"]),
        f"{tag}speed_ratio_corpus_file": ratio(runs["gensim_corpus_file"]),
    }
    for name, mine in runs.items():
        result[f"{name}_{tag}words_per_s"] = statistics.median(r.words_per_s for r in mine)
        for metric in ("analogy", "ws353"):
            values = [getattr(r, metric) for r in mine]
            result[f"{name}_{tag}{metric}"] = statistics.fmean(values)
            result[f"{name}_{tag}{metric}_std"] = statistics.stdev(values) if repeats > 1 else 0.0
    return result


def _scaling(files: _Files, config: Word2VecConfig, repeats: int) -> dict[str, float]:
    """seqlab and gensim ``corpus_file`` at 1 worker and at ``config.workers``, in rotated
    order: the speed-up of each from its extra workers (median over repeats)."""
    single = dataclasses.replace(config, workers=1)
    result: dict[str, float] = {}
    for name in ("seqlab", "gensim_corpus_file"):
        pairs: list[float] = []
        for repeat in range(repeats):
            configs = [dataclasses.replace(c, seed=repeat + 1) for c in (single, config)]
            if repeat % 2:
                configs.reverse()
            rates = {c.workers: CONTENDERS[name](files, c).words_per_s for c in configs}
            pairs.append(rates[config.workers] / rates[1])
            result[f"{name}_words_per_s_1_worker"] = rates[1]
        result[f"{name}_scaling"] = statistics.median(pairs)
    return result


def run(
    quick: bool = False, repeats: int | None = None, workers: int = 2, scaling: bool = True
) -> dict[str, Any]:
    """Skip-gram numbers under the issue's keys, CBOW numbers under ``cbow_*`` keys, the
    thread scaling (``scaling``) under ``*_scaling``.

    ``quick``: 1 epoch and 1 repeat (a smoke run of a few seconds per library).
    """
    import gensim

    files = _Files(
        resolve("ptb", "train"),
        resolve("word_similarity", "analogies"),
        resolve("word_similarity", "wordsim353"),
    )
    epochs = 1 if quick else 5
    repeats = repeats if repeats is not None else (1 if quick else 3)
    warm_up()
    result: dict[str, Any] = {}
    architectures: tuple[Architecture, ...] = ("skipgram", "cbow")
    for architecture in architectures:
        config = Word2VecConfig(architecture=architecture, epochs=epochs, workers=workers)
        tag = "" if architecture == "skipgram" else "cbow_"
        result.update(_compare(files, config, repeats, tag))
    if scaling and workers > 1:
        config = Word2VecConfig(architecture="skipgram", epochs=epochs, workers=workers)
        result.update(_scaling(files, config, repeats))
    result.update(
        {
            "epochs": epochs,
            "workers": workers,
            "repeats": repeats,
            "gensim_version": gensim.__version__,
            **bench_metadata("cpu"),
        }
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per library")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1-worker runs")
    parser.add_argument("--json", action="store_true", help="print one JSON line at the end")
    args = parser.parse_args(argv)
    result = run(
        quick=args.quick, repeats=args.repeats, workers=args.workers, scaling=not args.no_scaling
    )
    for key, value in result.items():
        print(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
