"""Sampling a sequence autoencoder's code space with a GAN (task ``latent_gan``): the
two-stage variant of the adversarially regularised autoencoder (ARAE, Zhao et al. 2018).

``data.autoencoder`` names a finished ``seq_autoencode`` run, which stays frozen: its
encoder turns every training sentence into a code (the decoder's start state, flattened:
``SeqAutoencoder.state_to_code``) once, a generator and a critic
(``models/latent_gan.py``) are trained on those codes as a Wasserstein GAN (WGAN-GP by
default), and new sentences are the autoencoder's decoder run from generated codes
(greedy, or sampled with ``data.decode: sample``). ARAE trains the autoencoder jointly
with the GAN, so the codes adapt to what the generator can produce; here they do not.

Evaluation (``{split}`` names the held-out sentences compared with and seeds the draw):
``data.samples`` sentences from each of four sources, all in the autoencoder's vocabulary
(a word outside it is ``<unk>``):

* ``gan``: decoded from generated codes;
* ``real``: the first held-out sentences of the split;
* ``gauss``: decoded from codes drawn from a Gaussian with the mean and covariance of the
  training codes (the baseline a GAN has to beat);
* ``lm``: sampled from the language model ``data.lm`` (when given).

For each, ``{split}_{source}_fppl``: forward perplexity under ``data.lm`` (a word-level
``lm_rnn`` run, each sentence scored alone from ``<eos>``, its final ``<eos>`` included;
words outside the LM's vocabulary become its ``<unk>`` and are counted in
``{split}_{source}_lm_oov``, per mille), ``_distinct1`` / ``_distinct2`` (Li et al. 2016),
``_length`` (mean words) and ``_unk`` (percent of words that are ``<unk>``). For codes:
``{split}_w_distance`` (the critic's E f(real) - E f(generated) on the split's codes) and
``{split}_{gan,gauss}_code_fd`` (the Frechet distance between Gaussians fitted to the
generated and the split's codes). ``samples_{split}.json`` holds the first sentences of
each source.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from rich.console import Console
from torch import Tensor
from torch.nn import functional as F

from seqlab.config import ExperimentConfig, TrainerConfig
from seqlab.contract import ModelSpec, move_to
from seqlab.data.vocab import EOS, UNK, Vocab
from seqlab.decode import next_token
from seqlab.errors import ConfigError, DataError
from seqlab.io import atomic_write_text
from seqlab.metrics import distinct_n
from seqlab.models.latent_gan import LatentGAN, LatentGANConfig
from seqlab.models.seq_autoencoder import SeqAutoencoder
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import FittedTask, finished_run_config, save_data_report
from seqlab.tasks.rnn_lm import RNNLMTask
from seqlab.tasks.seq_autoencode import SeqAutoencodeTask, make_batch
from seqlab.train.checkpoint import load_weights, save_weights
from seqlab.train.optim import build_optimizer
from seqlab.train.trainer import seed_everything, set_threads

SPLIT_DRAW = {"val": 1, "test": 2}
"""Each split's draw of noise has its own seed (``trainer.seed * 1000 +`` this)."""


@dataclass(frozen=True)
class LatentGANDataConfig:
    autoencoder: str = ""
    """Run dir of a finished ``seq_autoencode`` run (frozen: encodes and decodes)."""
    lm: str = ""
    """Run dir of a finished word-level ``lm_rnn`` run that scores the samples (forward
    perplexity) and gives the ``lm`` reference; empty: no perplexity, no ``lm`` row."""
    samples: int = 800
    """Sentences per source in the evaluation (at most the split's held-out sentences, so
    that distinct-n compares sets of equal size)."""
    decode: Literal["greedy", "sample"] = "greedy"
    """How the autoencoder's decoder writes a code's sentence."""
    temperature: float = 1.0
    """Softmax temperature of ``decode: sample``."""
    references: bool = True
    """Also evaluate the ``real``, ``gauss`` and ``lm`` sources."""
    encode_batch_size: int = 500

    def validate(self) -> None:
        if not self.autoencoder:
            raise ConfigError(
                "data.autoencoder: name the run dir of a finished seq_autoencode run "
                "(--set data.autoencoder=RUN_DIR)"
            )
        if self.samples < 1 or self.encode_batch_size < 1:
            raise ConfigError("data.samples and data.encode_batch_size must be at least 1")
        if self.temperature <= 0:
            raise ConfigError(f"data.temperature must be > 0, got {self.temperature}")


@dataclass
class LanguageModel:
    """A finished word-level LM run: its model (eval mode) and vocabulary."""

    model: torch.nn.Module
    vocab: Vocab


@dataclass
class LatentGANData:
    autoencoder: SeqAutoencoder
    """The frozen autoencoder, in eval mode."""
    vocab: Vocab
    max_length: int
    """The autoencoder's longest sentence (words): generated sentences stop there."""
    codes: Tensor
    """(N, D) the codes of the autoencoder's training sentences."""
    sentences: dict[str, list[list[str]]]
    """The autoencoder's sentences per split, words outside its vocabulary as <unk>."""
    lm: LanguageModel | None
    run_dir: Path
    drawn: dict[tuple[str, int], dict[str, list[list[str]]]] = field(default_factory=dict)
    """Each split's sentences per source, kept for the model (by id) that drew them:
    ``evaluate`` and ``write_report`` of one split decode once."""


def in_vocab(vocab: Vocab, sentence: Sequence[str]) -> list[str]:
    """The sentence with every word outside ``vocab`` written as <unk>."""
    return [w if w in vocab else UNK for w in sentence]


@torch.no_grad()
def encode_codes(
    model: SeqAutoencoder, vocab: Vocab, sentences: Sequence[Sequence[str]], batch_size: int
) -> Tensor:
    """(N, D) codes of ``sentences`` (the encoder's final state, flattened), on the CPU."""
    device = model.embedding.weight.device
    codes = []
    for start in range(0, len(sentences), batch_size):
        batch = move_to(make_batch(vocab, sentences[start : start + batch_size]), device)
        codes.append(model.state_to_code(model.encode(batch.source)).cpu())
    return torch.cat(codes)


@torch.no_grad()
def decode_codes(
    data: LatentGANData, codes: Tensor, temperature: float, generator: torch.Generator
) -> list[list[str]]:
    """The autoencoder's sentences for ``codes`` (N, D): greedy (``temperature`` 0) or
    sampled, at most ``data.max_length`` words each."""
    model = data.autoencoder
    device = model.embedding.weight.device
    sentences = []
    for chunk in codes.split(500):
        state = model.code_to_state(chunk.to(device))
        ids = model.decode(state, data.max_length, temperature, generator)
        sentences += [data.vocab.decode(row) for row in ids]
    return sentences


def gaussian_codes(codes: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """(size, D) draws from N(mean, cov) of ``codes`` (N, D) (cov + 1e-5 I)."""
    mean = codes.double().mean(0)
    centred = codes.double() - mean
    cov = centred.T @ centred / (codes.size(0) - 1) + 1e-5 * torch.eye(codes.size(1))
    factor = torch.linalg.cholesky(cov)  # (D, D), cov = L L^T
    noise = torch.randn(size, codes.size(1), generator=generator, dtype=torch.float64)
    return (mean + noise @ factor.T).float()


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to
    the rows of ``a`` (N, D) and ``b`` (M, D) (FID's formula, Heusel et al. 2017); the
    trace of the root is the sum of the square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2), which has the same spectrum as S_a S_b."""
    x, y = a.double().numpy(), b.double().numpy()
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    values, vectors = np.linalg.eigh(cov_x)
    root_x = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T  # S_a^(1/2)
    middle = np.linalg.eigvalsh(root_x @ cov_y @ root_x)
    trace_root = float(np.sqrt(middle.clip(min=0)).sum())
    mean_gap = float(((x.mean(0) - y.mean(0)) ** 2).sum())
    return max(mean_gap + float(np.trace(cov_x) + np.trace(cov_y)) - 2 * trace_root, 0.0)


@torch.no_grad()
def forward_perplexity(
    lm: LanguageModel, sentences: Sequence[Sequence[str]], batch_size: int = 200
) -> tuple[float, int, int]:
    """(perplexity, words outside the LM's vocabulary, words) of ``sentences`` under the
    LM, each read alone from ``<eos>`` (the LM's sentence boundary) with its final
    ``<eos>`` predicted too."""
    eos, unk = lm.vocab.stoi[EOS], lm.vocab.unk_index
    device = next(lm.model.parameters()).device
    total, count, oov, words = 0.0, 0, 0, 0
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start : start + batch_size]
        rows = [[eos, *(lm.vocab.stoi.get(w, unk) for w in s), eos] for s in chunk]
        oov += sum(w not in lm.vocab.stoi for s in chunk for w in s)
        words += sum(len(s) for s in chunk)
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [eos] * (width - len(r)) for r in rows], device=device)
        lengths = torch.tensor([len(r) - 1 for r in rows], device=device)
        mask = torch.arange(width - 1, device=device)[None, :] < lengths[:, None]  # (B, T)
        logits, _ = lm.model(ids[:, :-1])  # (B, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T)
        total += float((nll * mask).sum())
        count += int(mask.sum())
    return math.exp(total / count), oov, words


@torch.no_grad()
def lm_samples(
    lm: LanguageModel, size: int, max_length: int, generator: torch.Generator
) -> list[list[str]]:
    """``size`` sentences sampled from the LM (temperature 1) after ``<eos>``, each ended
    at its next ``<eos>`` or after ``max_length`` words."""
    eos = lm.vocab.stoi[EOS]
    device = next(lm.model.parameters()).device
    prompt = torch.full((size, 1), eos, dtype=torch.long, device=device)
    logits, state = lm.model.start(prompt)  # type: ignore[operator]
    chosen = []
    for _ in range(max_length + 1):
        token = next_token(logits, 1.0, generator=generator)  # (B,)
        chosen.append(token)
        logits, state = lm.model.step(token, state)  # type: ignore[operator]
    rows = torch.stack(chosen, 1).tolist()  # (B, max_length + 1)
    cut = [row[: row.index(eos)] if eos in row else row[:max_length] for row in rows]
    return [lm.vocab.decode(row) for row in cut]


def write_autoencoder_sentences(run_dir: str | Path, split: str, path: str | Path) -> int:
    """Write the sentences of ``split`` of the ``seq_autoencode`` run ``run_dir`` to
    ``path``, one a line, as the autoencoder reads them (lowercased, at most its
    ``max_length`` words, a word outside its vocabulary as ``<unk>``): the text a
    language model that scores a latent GAN's samples is trained on. Returns how many."""
    task = SeqAutoencodeTask()
    cfg = finished_run_config(task, Path(run_dir), "run_dir", "cpu")
    data = task.setup(cfg, Path(run_dir), train=False)
    if split not in data.splits:
        raise ConfigError(f"{run_dir} has no split {split!r} (it has {sorted(data.splits)})")
    lines = [" ".join(in_vocab(data.vocab, s)) for s in data.splits[split]]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")
    return len(lines)


LATENT_GAN_MODELS: Registry[ModelSpec[LatentGANData]] = Registry("latent GAN model")
LATENT_GAN_MODELS.register(
    "mlp",
    ModelSpec(
        LatentGANConfig,
        lambda cfg, data: LatentGAN(cfg.model, data.autoencoder.code_size()),
    ),
)


class LatentGANTask(FittedTask[LatentGANData]):
    name = "latent_gan"
    data_config = LatentGANDataConfig
    models = LATENT_GAN_MODELS
    default_model = "mlp"

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> LatentGANData:
        dcfg: LatentGANDataConfig = cfg.data
        device = cfg.trainer.device
        ae_task = SeqAutoencodeTask()
        ae_dir = Path(dcfg.autoencoder)
        ae_cfg = finished_run_config(ae_task, ae_dir, "data.autoencoder", device)
        loaded, ae_data = ae_task.load_trained(ae_cfg, ae_dir)
        autoencoder = cast(SeqAutoencoder, loaded)
        vocab = ae_data.vocab
        sentences = {s: [in_vocab(vocab, x) for x in xs] for s, xs in ae_data.splits.items()}
        codes = encode_codes(autoencoder, vocab, sentences["train"], dcfg.encode_batch_size)
        lm = None
        if dcfg.lm:
            lm_task = RNNLMTask()
            lm_dir = Path(dcfg.lm)
            lm_cfg = finished_run_config(lm_task, lm_dir, "data.lm", device)
            if lm_cfg.data.level != "word":
                raise ConfigError(f"data.lm: {lm_dir} is a character-level LM; give a word one")
            lm_model, lm_data = lm_task.load_trained(lm_cfg, lm_dir)
            lm = LanguageModel(lm_model, lm_data.vocab)
        if train:
            report: dict[str, Any] = {
                "train_codes": codes.size(0),
                "code_size": codes.size(1),
                **{f"{s}_sentences": len(xs) for s, xs in sentences.items()},
            }
            if lm is not None:
                words = {w for s in sentences["train"] for w in s}
                report["autoencoder_words_outside_lm_vocab"] = len(words - set(lm.vocab.stoi))
            save_data_report(run_dir, report)
        return LatentGANData(
            autoencoder=autoencoder,
            vocab=vocab,
            max_length=ae_cfg.data.max_length,
            codes=codes,
            sentences=sentences,
            lm=lm,
            run_dir=run_dir,
        )

    def fit(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        fold: int | None = None,
        console: Console | None = None,
    ) -> dict[str, float]:
        """Encode, train generator and critic (``model.critic_iters`` critic steps per
        generator step; ``trainer.max_steps`` generator steps, else ``trainer.epochs``
        passes of ``trainer.batch_size`` codes), save the weights and evaluate."""
        console = console or Console(stderr=True)
        tcfg: TrainerConfig = cfg.trainer
        seed_everything(tcfg.seed, tcfg.deterministic)
        set_threads(tcfg.threads)
        data = self.setup(cfg, run_dir, train=True)
        model: LatentGAN = self.models.get(cfg.model.name).build(cfg, data).to(tcfg.device)
        model.set_code_scale(data.codes.to(tcfg.device))
        real = model.standardise(data.codes.to(tcfg.device))  # (N, D)
        critic_opt = build_optimizer(model.critic.parameters(), cfg.optim)
        generator_opt = build_optimizer(model.generator.parameters(), cfg.optim)
        per_epoch = math.ceil(real.size(0) / tcfg.batch_size)
        steps = tcfg.max_steps if tcfg.max_steps is not None else tcfg.epochs * per_epoch
        draw = torch.Generator(device=tcfg.device).manual_seed(tcfg.seed)
        console.print(
            f"latent GAN ({cfg.model.penalty}) on {real.size(0)} codes of size {real.size(1)}: "
            f"{steps} generator steps, {cfg.model.critic_iters} critic steps each"
        )
        records: list[dict[str, float]] = []
        start = time.perf_counter()
        distance = torch.zeros(())
        step = 0
        for step in range(1, steps + 1):
            for _ in range(cfg.model.critic_iters):
                size = (tcfg.batch_size,)
                index = torch.randint(real.size(0), size, generator=draw, device=tcfg.device)
                noise = model.noise(tcfg.batch_size, draw)
                loss, distance = model.critic_loss(real[index], noise, draw)
                critic_opt.zero_grad(set_to_none=True)
                loss.backward()
                critic_opt.step()
                if cfg.model.penalty == "clip":
                    model.clip_critic()
            generator_loss = model.generator_loss(model.noise(tcfg.batch_size, draw))
            generator_opt.zero_grad(set_to_none=True)
            generator_loss.backward()
            generator_opt.step()
            generator_value = float(generator_loss.detach())
            if not math.isfinite(generator_value):
                raise DataError(f"latent GAN: non-finite generator loss at step {step}")
            if step % tcfg.log_every == 0 or step == steps:
                record = {
                    "step": float(step),
                    "epoch": step / per_epoch,
                    "w_distance": float(distance),
                    "generator_loss": generator_value,
                }
                records.append(record)
                if tcfg.progress:
                    console.print(
                        f"step {step} critic E f(real) - E f(fake) {record['w_distance']:.4f} "
                        f"generator loss {record['generator_loss']:.4f}"
                    )
            limit = tcfg.max_minutes
            if limit is not None and time.perf_counter() - start > 60 * limit:
                console.print(f"stopped by trainer.max_minutes={limit} at step {step}")
                break
        seconds = time.perf_counter() - start
        save_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        metrics: dict[str, float] = {"steps": float(step), "train_seconds": seconds}
        for split in self.final_splits(cfg, data):
            metrics.update(self.evaluate(cfg, model, data, split))
            self.write_report(cfg, model, data, split)
        lines = [json.dumps(r) for r in records] + [json.dumps({"step": step, **metrics})]
        atomic_write_text(RunDir(run_dir).metrics_log, "\n".join(lines) + "\n")
        return metrics

    def load_trained(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        data_path: str | None = None,
        fold: int | None = None,
    ) -> tuple[LatentGAN, LatentGANData]:
        data = self.setup_eval(cfg, run_dir, data_path)
        model: LatentGAN = self.models.get(cfg.model.name).build(cfg, data).to(cfg.trainer.device)
        load_weights(RunDir(run_dir).best_weights, model)
        model.eval()
        return model, data

    def splits(self, data: LatentGANData) -> list[str]:
        return [s for s in ("val", "test") if s in data.sentences]

    def sources(
        self, cfg: ExperimentConfig, model: LatentGAN, data: LatentGANData, split: str
    ) -> dict[str, list[list[str]]]:
        """The sentences of each source for ``split`` (the same for the same seed)."""
        key = (split, id(model))
        if key not in data.drawn:
            data.drawn[key] = self._draw(cfg, model, data, split)
        return data.drawn[key]

    def _draw(
        self, cfg: ExperimentConfig, model: LatentGAN, data: LatentGANData, split: str
    ) -> dict[str, list[list[str]]]:
        dcfg: LatentGANDataConfig = cfg.data
        held_out = data.sentences[split]
        size = min(dcfg.samples, len(held_out))
        seed = cfg.trainer.seed * 1000 + SPLIT_DRAW.get(split, 0)
        draw = torch.Generator(device=cfg.trainer.device).manual_seed(seed)
        cpu_draw = torch.Generator().manual_seed(seed)
        temperature = 0.0 if dcfg.decode == "greedy" else dcfg.temperature
        result = {"gan": decode_codes(data, model.sample(size, draw).cpu(), temperature, draw)}
        if dcfg.references:
            result["real"] = held_out[:size]
            gauss = gaussian_codes(data.codes, size, cpu_draw)
            result["gauss"] = decode_codes(data, gauss, temperature, draw)
            if data.lm is not None:
                result["lm"] = lm_samples(data.lm, size, data.max_length, draw)
        return result

    def evaluate(
        self, cfg: ExperimentConfig, model: LatentGAN, data: LatentGANData, split: str
    ) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for source, sentences in self.sources(cfg, model, data, split).items():
            words = sum(len(s) for s in sentences)
            prefix = f"{split}_{source}"
            metrics[f"{prefix}_distinct1"] = distinct_n(sentences, 1)
            metrics[f"{prefix}_distinct2"] = distinct_n(sentences, 2)
            metrics[f"{prefix}_length"] = words / len(sentences)
            metrics[f"{prefix}_unk"] = (
                100.0 * sum(w == UNK for s in sentences for w in s) / max(words, 1)
            )
            if data.lm is not None:
                ppl, oov, _ = forward_perplexity(data.lm, sentences)
                metrics[f"{prefix}_fppl"] = ppl
                metrics[f"{prefix}_lm_oov"] = 1000.0 * oov / max(words, 1)
        held_out = encode_codes(
            data.autoencoder, data.vocab, data.sentences[split], cfg.data.encode_batch_size
        )
        seed = cfg.trainer.seed * 1000 + SPLIT_DRAW.get(split, 0)
        draw = torch.Generator(device=cfg.trainer.device).manual_seed(seed + 500)
        generated = model.sample(held_out.size(0), draw).cpu()
        with torch.no_grad():
            device = model.code_mean.device
            real_scores = model.critic(model.standardise(held_out.to(device)))
            fake_scores = model.critic(model.standardise(generated.to(device)))
        metrics[f"{split}_w_distance"] = float(real_scores.mean() - fake_scores.mean())
        metrics[f"{split}_gan_code_fd"] = frechet_distance(generated, held_out)
        gauss = gaussian_codes(data.codes, held_out.size(0), torch.Generator().manual_seed(seed))
        metrics[f"{split}_gauss_code_fd"] = frechet_distance(gauss, held_out)
        metrics[f"{split}_train_code_fd"] = frechet_distance(data.codes, held_out)
        return metrics

    def write_report(
        self, cfg: ExperimentConfig, model: LatentGAN, data: LatentGANData, split: str
    ) -> None:
        """The first 20 sentences of each source into ``samples_{split}.json``
        (``samples_{split}_sample.json`` with ``data.decode: sample``)."""
        payload = {
            source: [" ".join(s) for s in sentences[:20]]
            for source, sentences in self.sources(cfg, model, data, split).items()
        }
        name = split if cfg.data.decode == "greedy" else f"{split}_sample"
        atomic_write_text(RunDir(data.run_dir).samples(name), json.dumps(payload, indent=2) + "\n")

    def predict(
        self, cfg: ExperimentConfig, model: LatentGAN, data: LatentGANData, lines: Iterable[str]
    ) -> Iterator[str]:
        """The critic's score of each input sentence's code (higher: more like the
        training codes), ``score<TAB>sentence``."""
        for line in lines:
            text = line.rstrip("\n")
            tokens = (text.lower() if getattr(cfg.data, "lowercase", True) else text).split()
            if not tokens:
                yield f"\t{text}"
                continue
            code = encode_codes(data.autoencoder, data.vocab, [tokens], 1)
            with torch.no_grad():
                score = model.critic(model.standardise(code.to(model.code_mean.device)))
            yield f"{float(score[0]):.4f}\t{text}"

    def generate(
        self,
        cfg: ExperimentConfig,
        model: LatentGAN,
        data: LatentGANData,
        *,
        prompt: str = "",
        max_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        beam: int = 0,
        **_: Any,
    ) -> Iterator[str]:
        """New sentences, one a line, until ``max_tokens`` words are written: noise ->
        generator -> the autoencoder's decoder, greedy at ``temperature`` 0, else sampled."""
        if prompt:
            raise ConfigError("a latent_gan run generates from noise: it takes no --prompt")
        if beam or top_k or top_p != 1.0:
            raise ConfigError(
                "a latent_gan run decodes greedily (--temperature 0) or by sampling; "
                "--beam, --top-k and --top-p do not apply"
            )
        draw = torch.Generator(device=cfg.trainer.device).manual_seed(seed)
        yield ""
        written = 0
        while written < max_tokens:
            codes = model.sample(8, draw).cpu()
            for sentence in decode_codes(data, codes, temperature, draw):
                yield " ".join(sentence) + "\n"
                written += max(len(sentence), 1)
                if written >= max_tokens:
                    return
