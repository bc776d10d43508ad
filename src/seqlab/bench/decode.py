"""`seqlab bench decode`: sentences/s of greedy and beam-5 translation, and batched beam
search against beam search one sentence at a time.

The model is a trained translate run (``$SEQLAB_DECODE_RUN``, else
``runs/multi30k_deen_bahdanau`` when it exists) decoding its test sources; without one, a
freshly initialised model of configs/multi30k_deen_bahdanau.yaml's shape decoding random
sources with Multi30k's test lengths (``trained: false``; an untrained model rarely emits
EOS, so its outputs run to the length limit and its rates are lower bounds). Sources go
longest first in batches of ``data.eval_batch_size`` sources (beam search: K rows each), as
``seqlab eval`` decodes them. The one-at-a-time side decodes the same sentences as the
batched side it is compared with, alternating rounds, best of each. Time is the process's
CPU time (one thread), not wall time: on a machine shared with other jobs, wall time
measures the share of the CPU a process got more than the decoder, so the rates are
sentences per CPU-second.
Keys: ``greedy_sentences_per_s``, ``beam5_sentences_per_s``,
``beam5_single_sentences_per_s``, ``batched_beam_speedup``.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path
from typing import Any, cast

import torch

from seqlab.bench.metadata import bench_metadata
from seqlab.config import ExperimentConfig
from seqlab.evaluation import LoadedRun
from seqlab.loader import load_config
from seqlab.models.seq2seq import Seq2Seq
from seqlab.shipped import CONFIG_DIR
from seqlab.tasks.translate import TranslateData, TranslateTask

CONFIG = CONFIG_DIR / "multi30k_deen_bahdanau.yaml"
DEFAULT_RUN = Path("runs") / "multi30k_deen_bahdanau"


def _fresh(sentences: int) -> tuple[ExperimentConfig, Seq2Seq, list[list[int]]]:
    cfg = load_config(CONFIG)
    torch.manual_seed(0)
    vocab = 6000
    model = Seq2Seq(cfg.model, vocab, vocab, 0).eval()
    rng = random.Random(0)
    lengths = [max(2, min(40, round(rng.gauss(15.5, 5.0)))) for _ in range(sentences)]
    return cfg, model, [[rng.randrange(4, vocab) for _ in range(n)] for n in lengths]


def _decode_rate(
    task: TranslateTask,
    cfg: ExperimentConfig,
    model: Seq2Seq,
    data: Any,
    sources: list[list[int]],
    beam: int,
    one_at_a_time: bool = False,
) -> float:
    """Sentences per CPU-second of decoding ``sources``."""
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, beam_size=beam))
    start = time.process_time()
    if one_at_a_time:
        for source in sources:
            task.translate_ids(cfg, model, data, [source])
    else:
        task.translate_ids(cfg, model, data, sources)
    return len(sources) / (time.process_time() - start)


def run(
    quick: bool = False,
    run_dir: Path | None = None,
    sentences: int | None = None,
    single: int | None = None,
) -> dict[str, Any]:
    torch.set_num_threads(1)
    task = TranslateTask()
    chosen = run_dir or Path(os.environ.get("SEQLAB_DECODE_RUN", DEFAULT_RUN))
    trained = (chosen / "best.safetensors").is_file()
    sentences = sentences or (40 if quick else 1000)
    single = single or (20 if quick else 100)
    data: Any = None
    if trained:
        loaded = LoadedRun.load(chosen, device="cpu")
        cfg, model = loaded.cfg, cast(Seq2Seq, loaded.model)
        data = cast(TranslateData, loaded.data)
        sources = data.splits["test"].source[:sentences]
    else:
        cfg, model, sources = _fresh(sentences)
    with torch.no_grad():
        greedy = _decode_rate(task, cfg, model, data, sources, 1)
        beam = _decode_rate(task, cfg, model, data, sources, 5)
        subset = sources[:single]
        batched, alone = 0.0, 0.0
        for _ in range(2):  # alternate, best of each
            batched = max(batched, _decode_rate(task, cfg, model, data, subset, 5))
            alone = max(alone, _decode_rate(task, cfg, model, data, subset, 5, True))
    return {
        "run_dir": str(chosen) if trained else None,
        "trained": trained,
        "sentences": len(sources),
        "threads": 1,
        "greedy_sentences_per_s": greedy,
        "beam5_sentences_per_s": beam,
        "beam5_batched_subset_sentences_per_s": batched,
        "beam5_single_sentences_per_s": alone,
        "single_sentences": len(subset),
        "batched_beam_speedup": batched / alone,
        **bench_metadata("cpu"),
    }
