"""n-gram LMs against probabilities worked out by hand from the formulas on toy corpora.

Ids in the toy corpora: a=0, b=1, c=2, <eos>=3 (and d=4, e=5, <unk>=6 in the modified-KN
corpus). Every expected number below is derived in the comments from the counts, with
exact fractions, never by calling the code under test.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction as Fr
from pathlib import Path

import numpy as np
import pytest

from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.models.ngram import AddKConfig, KneserNeyConfig, NGramLM, modified_kn_discounts

A, B, C, EOS = 0, 1, 2, 3
TOY = [[A, B], [A, C], [B]]  # <s> a b </s> / <s> a c </s> / <s> b </s>


def kn(
    order: int, discount: float | str = 0.5, corpus: list[list[int]] = TOY, v: int = 4
) -> NGramLM:
    cfg = KneserNeyConfig(order=order, discount=discount)  # type: ignore[arg-type]
    return NGramLM(cfg, vocab_size=v, eos=EOS).fit(corpus)


def pos(x: Fr) -> Fr:
    return max(x, Fr(0))


def prob(model: NGramLM, word: int, context: list[int]) -> float:
    return math.exp(model.logprob(word, context))


# ----------------------------------------------------------------- Kneser-Ney, fixed D


def test_fixed_discount_trigram_matches_hand_computation() -> None:
    model = kn(order=3, discount=0.5)
    d = Fr(1, 2)
    # Unigrams: continuation counts N1+(. w) over the bigram types
    #   <s>a <s>b ab ac b</s> c</s>:  a 1 (<s>), b 2 (a, <s>), c 1 (a), </s> 2 (b, c); total 6.
    # gamma_1 = D * 4 seen / 6 = 1/3, spread uniformly over |V| = 4.
    cont = {A: 1, B: 2, C: 1, EOS: 2}
    p1 = {w: (n - d) / 6 + Fr(1, 3) * Fr(1, 4) for w, n in cont.items()}
    assert p1 == {A: Fr(1, 6), B: Fr(1, 3), C: Fr(1, 6), EOS: Fr(1, 3)}
    # Bigrams: <s>-initial keep raw counts (<s>a 2, <s>b 1); others continuation counts
    #   ab 1 ({<s>}), ac 1 ({<s>}), b</s> 2 ({a, <s>}), c</s> 1 ({a}).
    #   P_2(w | h) = max(c - D, 0) / c(h) + D * (words seen after h) / c(h) * P_1(w)
    p2_s = {w: pos(n - d) / 3 + d * 2 / 3 * p1[w] for w, n in {A: 2, B: 1, C: 0, EOS: 0}.items()}
    assert p2_s == {A: Fr(5, 9), B: Fr(5, 18), C: Fr(1, 18), EOS: Fr(1, 9)}
    p2_a = {w: pos(n - d) / 2 + d * 2 / 2 * p1[w] for w, n in {A: 0, B: 1, C: 1, EOS: 0}.items()}
    assert p2_a == {A: Fr(1, 12), B: Fr(5, 12), C: Fr(1, 3), EOS: Fr(1, 6)}
    p2_b = {w: pos(n - d) / 2 + d * 1 / 2 * p1[w] for w, n in {A: 0, B: 0, C: 0, EOS: 2}.items()}
    p2_c_eos = (1 - d) / 1 + d * 1 / 1 * p1[EOS]
    # Trigrams (highest order: raw counts) <s>ab 1, <s>ac 1, ab</s> 1, ac</s> 1, <s>b</s> 1.
    p3_sa_b = (1 - d) / 2 + d * 2 / 2 * p2_a[B]
    p3_sa_c = (1 - d) / 2 + d * 2 / 2 * p2_a[C]
    p3_ab_eos = (1 - d) / 1 + d * 1 / 1 * p2_b[EOS]
    p3_sb_a = d * 1 / 1 * p2_b[A]  # (<s>, b) seen once, followed by </s> only
    p3_ac_eos = (1 - d) / 1 + d * 1 / 1 * p2_c_eos
    assert (p3_sa_b, p3_sa_c, p3_ab_eos) == (Fr(11, 24), Fr(5, 12), Fr(11, 12))

    assert prob(model, A, []) == pytest.approx(float(p2_s[A]), rel=1e-12)  # history <s> only
    assert prob(model, C, []) == pytest.approx(float(p2_s[C]), rel=1e-12)
    assert prob(model, B, [A]) == pytest.approx(float(p3_sa_b), rel=1e-12)
    assert prob(model, C, [A]) == pytest.approx(float(p3_sa_c), rel=1e-12)
    assert prob(model, EOS, [A, B]) == pytest.approx(float(p3_ab_eos), rel=1e-12)
    # (b, a) never seen as a history: back off to P_2(c | a) entirely.
    assert prob(model, C, [B, A]) == pytest.approx(float(p2_a[C]), rel=1e-12)
    # A whole sentence, <eos> included: b a c </s>.
    expected = p2_s[B] * p3_sb_a * p2_a[C] * p3_ac_eos
    assert model.sentence_logprob([B, A, C]) == pytest.approx(math.log(expected), rel=1e-12)
    assert model.discounts == [(0.5, 0.5, 0.5)] * 3


# ----------------------------------------------------------------- modified Kneser-Ney

# a b c </s> d e <unk> = 0 .. 6 (<eos> keeps the id 3 of the other corpus).
MA, MB, MC, MEOS, MD, ME, MUNK = 0, 1, 2, 3, 4, 5, 6
MODIFIED_CORPUS = [
    [MA, ME],
    [MB, ME],
    [MC, ME],
    [ME],
    [MA, MD],
    [MB, MD],
    [MC, MD],
]


def modified_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[Fr, Fr, Fr]:
    y = Fr(n1, n1 + 2 * n2)
    return 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3


def test_modified_discounts_formula() -> None:
    counts = np.array([1, 1, 1, 1, 2, 2, 3, 4, 7])  # n1 = 4, n2 = 2, n3 = 1, n4 = 1
    # Y = 4 / 8 = 1/2; D1 = 1 - 2(1/2)(2/4) = 1/2; D2 = 2 - 3(1/2)(1/2) = 5/4;
    # D3+ = 3 - 4(1/2)(1/1) = 1.
    assert modified_kn_discounts(counts, 2) == pytest.approx((0.5, 1.25, 1.0), rel=1e-15)
    with pytest.raises(DataError, match=r"order 2 has count-of-counts n1..n4 = \[4, 2, 1, 0\]"):
        modified_kn_discounts(np.array([1, 1, 1, 1, 2, 2, 3]), 2)
    with pytest.raises(DataError, match="negative"):
        # n1 = 1, n2 = 1, n3 = 5, n4 = 1: Y = 1/3, D2 = 2 - 3(1/3)(5/1) = -3
        modified_kn_discounts(np.array([1, 2, 3, 3, 3, 3, 3, 4]), 1)


def test_modified_kn_bigram_matches_hand_computation() -> None:
    model = kn(order=2, discount="modified", corpus=MODIFIED_CORPUS, v=7)
    # Bigram raw counts: <s>a 2, <s>b 2, <s>c 2, <s>e 1, ae be ce ad bd cd 1 each, e</s> 4,
    # d</s> 3  ->  n1 = 7, n2 = 3, n3 = 1, n4 = 1.
    d2 = modified_discounts(7, 3, 1, 1)
    assert d2 == (Fr(7, 13), Fr(19, 13), Fr(11, 13))
    # Unigram continuation counts: a b c 1 ({<s>}), d 3 ({a,b,c}), e 4 ({<s>,a,b,c}),
    # </s> 2 ({d, e}), <unk> 0  ->  n1 = 3, n2 = 1, n3 = 1, n4 = 1; total 12.
    d1 = modified_discounts(3, 1, 1, 1)
    assert d1 == (Fr(3, 5), Fr(1, 5), Fr(3, 5))
    assert model.discounts == [pytest.approx(tuple(map(float, d))) for d in (d1, d2)]
    cont = {MA: 1, MB: 1, MC: 1, MD: 3, ME: 4, MEOS: 2, MUNK: 0}

    def disc(n: int, ds: tuple[Fr, Fr, Fr]) -> Fr:
        return Fr(0) if n == 0 else ds[min(n, 3) - 1]

    gamma1 = sum(disc(n, d1) for n in cont.values()) / 12  # (3 D1 + D2 + 2 D3+) / 12 = 4/15
    assert gamma1 == Fr(4, 15)
    p1 = {w: (n - disc(n, d1)) / 12 + gamma1 * Fr(1, 7) for w, n in cont.items()}
    assert p1[MA] == Fr(1, 14) and p1[MD] == Fr(5, 21) and p1[ME] == Fr(9, 28)
    assert p1[MEOS] == Fr(79, 420) and p1[MUNK] == Fr(4, 105) and sum(p1.values()) == 1

    def p2(history: dict[int, int], word: int) -> Fr:
        total = sum(history.values())
        gamma = sum(disc(n, d2) for n in history.values()) / total
        n = history.get(word, 0)
        return (n - disc(n, d2)) / total + gamma * p1[word]

    after_bos = {MA: 2, MB: 2, MC: 2, ME: 1}
    after_a = {ME: 1, MD: 1}
    after_e = {MEOS: 4}
    assert p2(after_bos, MA) == Fr(81, 637)
    assert p2(after_bos, ME) == Fr(186, 637)
    assert p2(after_a, ME) == Fr(21, 52)
    assert p2(after_e, MEOS) == Fr(18089, 21840)
    cases = [
        (MA, [], p2(after_bos, MA)),
        (ME, [], p2(after_bos, ME)),
        (MD, [], p2(after_bos, MD)),
        (ME, [MA], p2(after_a, ME)),
        (MD, [MA], p2(after_a, MD)),
        (MEOS, [MA], p2(after_a, MEOS)),
        (MEOS, [ME], p2(after_e, MEOS)),
        (MA, [MUNK], p1[MA]),  # history never seen: the unigram distribution
        (MUNK, [MA], p2(after_a, MUNK)),  # a word never seen: only the uniform share
    ]
    for word, context, expected in cases:
        assert prob(model, word, context) == pytest.approx(float(expected), rel=1e-12)


def test_modified_kn_refuses_too_little_data() -> None:
    with pytest.raises(DataError, match="count-of-counts"):
        kn(order=2, discount="modified")


# ----------------------------------------------------------------- add-k


def test_add_k_bigram_matches_hand_computation() -> None:
    model = NGramLM(AddKConfig(order=2, k=0.5), vocab_size=4, eos=EOS).fit(TOY)
    # Raw bigrams: <s>a 2, <s>b 1, ab 1, ac 1, b</s> 2, c</s> 1.
    # P(w | h) = (c(hw) + 1/2) / (c(h) + 1/2 * 4)
    assert prob(model, A, []) == pytest.approx((2 + 0.5) / (3 + 2), rel=1e-12)
    assert prob(model, C, [B]) == pytest.approx(0.5 / (2 + 2), rel=1e-12)
    assert prob(model, EOS, [A, B]) == pytest.approx(2.5 / 4, rel=1e-12)
    assert prob(model, EOS, [EOS]) == pytest.approx(1 / 4, rel=1e-12)  # unseen history


def test_add_k_trigram_uses_the_shorter_history_at_the_sentence_start() -> None:
    model = NGramLM(AddKConfig(order=3, k=1.0), vocab_size=4, eos=EOS).fit(TOY)
    assert prob(model, A, []) == pytest.approx((2 + 1) / (3 + 4), rel=1e-12)  # <s> a
    assert prob(model, B, [A]) == pytest.approx((1 + 1) / (2 + 4), rel=1e-12)  # <s> a b
    assert prob(model, A, [B, A]) == pytest.approx(1 / 4, rel=1e-12)  # (b, a) unseen


# ----------------------------------------------------------------- perplexity arithmetic


def test_uniform_model_has_perplexity_vocab_size() -> None:
    # Each of a, b, c, </s> is seen once: the add-k unigram model is uniform over |V| = 4.
    model = NGramLM(AddKConfig(order=1, k=1.0), vocab_size=4, eos=EOS).fit([[A, B, C]])
    ppl, n = model.perplexity([[A, A, A, A], [], [C, B]])
    assert n == 4 + 1 + 0 + 1 + 2 + 1
    assert ppl == pytest.approx(4.0, rel=1e-12)


def test_perplexity_is_exp_of_mean_negative_logprob() -> None:
    model = kn(order=3)
    test = [[B, A, C], [A], [C, C, B]]
    total = sum(model.sentence_logprob(s) for s in test)
    n = sum(len(s) + 1 for s in test)
    ppl, count = model.perplexity(test)
    assert count == n
    assert ppl == pytest.approx(math.exp(-total / n), rel=1e-12)


# ----------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "model",
    [
        NGramLM(KneserNeyConfig(order=3, discount=0.5), 4, EOS).fit(TOY),
        NGramLM(KneserNeyConfig(order=2), 7, MEOS).fit(MODIFIED_CORPUS),
        NGramLM(KneserNeyConfig(order=5, discount=1.0), 4, EOS).fit(TOY),
        NGramLM(AddKConfig(order=3, k=0.1), 4, EOS).fit(TOY),
        NGramLM(AddKConfig(order=1, k=2.0), 4, EOS).fit(TOY),
    ],
    ids=["kn3-fixed", "kn2-modified", "kn5-fixed-1", "addk3", "addk1"],
)
def test_distributions_sum_to_one_for_every_context(model: NGramLM) -> None:
    words = range(model.vocab_size)
    for length in range(4):
        for context in itertools.product(words, repeat=length):
            p = model.distribution(list(context))
            assert p.shape == (model.vocab_size,)
            assert p.min() > 0
            assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.exp([model.logprob(w, [A, B]) for w in words]) == pytest.approx(
        model.distribution([A, B]), rel=1e-12
    )


# ----------------------------------------------------------------- generate, save/load


def test_generate_is_seeded_and_restarts_after_eos() -> None:
    model = kn(order=3)
    # Greedy: <s> -> a (5/9), <s> a -> b (11/24 > 5/12), a b -> </s> (11/12), then again.
    greedy = list(model.generate([], 6, np.random.default_rng(0), temperature=0))
    assert greedy == [A, B, EOS, A, B, EOS]
    first = list(model.generate([C], 50, np.random.default_rng(1)))
    again = list(model.generate([C], 50, np.random.default_rng(1)))
    other = list(model.generate([C], 50, np.random.default_rng(2)))
    assert first == again != other
    assert set(first) <= {A, B, C, EOS}
    # Sampling follows P(. | <s>) = (5/9, 5/18, 1/18, 1/9) (see the trigram test).
    rng = np.random.default_rng(5)
    draws = [next(model.generate([], 1, rng)) for _ in range(1000)]
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    assert frequencies == pytest.approx([5 / 9, 5 / 18, 1 / 18, 1 / 9], abs=0.05)
    assert list(model.generate([A], 20, np.random.default_rng(3), top_k=1)) == list(
        model.generate([A], 20, np.random.default_rng(4), temperature=0)
    )


def test_save_load_gives_identical_model(tmp_path: Path) -> None:
    for model in (kn(order=3), NGramLM(AddKConfig(order=2, k=0.3), 4, EOS).fit(TOY)):
        path = tmp_path / f"{model.config.name}.safetensors"
        model.save(path)
        loaded = NGramLM.load(path)
        assert loaded.config == model.config
        assert (loaded.vocab_size, loaded.eos, loaded.discounts) == (4, EOS, model.discounts)
        for context in ([], [A], [B, A], [C, C, C]):
            assert np.array_equal(loaded.distribution(context), model.distribution(context))
        assert loaded.perplexity(TOY) == model.perplexity(TOY)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


# ----------------------------------------------------------------- bad input


def test_bad_configs_and_input_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.order must be in 1..5"):
        KneserNeyConfig(order=6).validate()
    with pytest.raises(ConfigError, match="model.discount"):
        KneserNeyConfig(discount=1.5).validate()
    with pytest.raises(ConfigError, match="model.k must be > 0"):
        AddKConfig(k=0.0).validate()
    model = NGramLM(KneserNeyConfig(order=2, discount=0.5), 4, EOS)
    with pytest.raises(ConfigError, match="not fitted"):
        model.logprob(A, [])
    with pytest.raises(DataError, match="empty corpus"):
        model.fit([])
    with pytest.raises(DataError, match="word id 7 is outside the vocabulary of 4"):
        model.fit([[A, 7]])
    with pytest.raises(RunDirError, match="no n-gram model here"):
        NGramLM.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(RunDirError, match="unreadable n-gram model"):
        NGramLM.load(junk)
