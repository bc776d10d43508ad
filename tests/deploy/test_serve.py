"""``seqlab serve``: the task endpoints give the run's own answers; bad requests are 4xx
with a message, never a 500; limits, API key and bind rule; micro-batching; a crafted
pickle in a run dir is refused without running it."""

from __future__ import annotations

import json
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from seqlab.cli import app as cli
from seqlab.errors import ConfigError, RunDirError
from seqlab.evaluation import LoadedRun, generate_text
from seqlab.serve.app import create_app, strip_paths
from seqlab.serve.endpoints import ENDPOINTS
from seqlab.serve.settings import ServeSettings, check_bind
from seqlab.train.checkpoint import load_checkpoint

SENTENCES = ["great acting", "a dull tired mess", "funny and wise", "boring and stupid", "a joy"]


@pytest.fixture(scope="module")
def cnn_client(cnn: Path) -> Any:
    with TestClient(create_app(LoadedRun.load(cnn), ServeSettings(max_text_chars=200))) as client:
        yield client


def details(response: httpx.Response) -> str:
    body = response.json()["detail"]
    return body if isinstance(body, str) else " | ".join(item["msg"] for item in body)


def test_predict_gives_the_runs_labels_and_info_shows_no_paths(
    cnn: Path, cnn_client: TestClient
) -> None:
    run = LoadedRun.load(cnn)
    expected = [line.split("\t") for line in run.predict(SENTENCES)]
    for text, (label, probability, _) in zip(SENTENCES, expected, strict=True):
        answer = cnn_client.post("/predict", json={"text": text})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["label"] == label
        assert body["probability"] == pytest.approx(float(probability), abs=1e-4)
        assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert cnn_client.get("/health").json()["status"] == "ok"
    info = cnn_client.get("/info")
    assert info.status_code == 200
    data = info.json()
    assert data["task"] == "classify" and data["endpoint"] == "/predict"
    assert data["vocab_size"] == len(run.data.vocab) and data["labels"] == ["neg", "pos"]
    assert data["metrics"]["test_acc"] >= 0 and data["config"]["model"]["name"] == "cnn"
    assert data["config"]["data"]["dataset"] == "reviews.tsv"  # the file name, no folder
    assert str(cnn.parent) not in info.text and "/tmp" not in info.text
    schema = cnn_client.get("/openapi.json").json()
    assert {"/predict", "/health", "/info"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["TextRequest"]["properties"]["text"]["maxLength"] == 200
    request = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert request["schema"]["$ref"].endswith("/TextRequest")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": ""}, 422, "at least 1 character"),
        ({"text": " \t "}, 422, "should match pattern"),
        ({"text": 5}, 422, "valid string"),
        ({}, 422, "Field required"),
        ({"text": "fine", "extra": 1}, 422, "Extra inputs"),
        ({"text": "x" * 201}, 422, "at most 200 characters"),
        ([1, 2], 422, "valid dictionary"),
        ({"text": "\n\r"}, 422, "should match pattern"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(
    cnn_client: TestClient, body: Any, status: int, message: str
) -> None:
    response = cnn_client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert message in details(response)


def test_malformed_and_oversized_bodies(cnn_client: TestClient) -> None:
    broken = cnn_client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON" in details(broken)
    huge = cnn_client.post("/predict", json={"text": "word " * 20_000})
    assert huge.status_code == 413 and "over 65536 bytes" in details(huge)
    assert cnn_client.get("/predict").status_code == 405
    assert cnn_client.post("/generate", json={"prompt": "a"}).status_code == 404


def test_concurrent_requests_are_batched_and_answered_as_alone(cnn: Path, serve_live: Any) -> None:
    run = LoadedRun.load(cnn)
    service = create_app(run, ServeSettings(batch_wait_ms=50))
    alone = {
        text: TestClient(create_app(run)).post("/predict", json={"text": text}).json()
        for text in SENTENCES
    }
    with serve_live(service) as url:
        texts = SENTENCES * 4
        with httpx.Client(base_url=url) as http, ThreadPoolExecutor(len(texts)) as pool:
            results = list(pool.map(lambda t: http.post("/predict", json={"text": t}), texts))
            health = http.get("/health").json()
    assert all(r.status_code == 200 for r in results)
    for text, result in zip(texts, results, strict=True):
        assert result.json()["label"] == alone[text]["label"]
        assert result.json()["probability"] == pytest.approx(alone[text]["probability"], abs=1e-5)
    assert health["requests"] == len(texts)
    assert health["batches"] < len(texts) and health["largest_batch"] > 1


def test_api_key_and_bind_rule(cnn: Path) -> None:
    service = create_app(LoadedRun.load(cnn), ServeSettings(host="0.0.0.0", api_key="s3cret"))
    with TestClient(service) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200  # the page itself holds nothing
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer nope"}):
            assert client.get("/info", headers=headers).status_code == 401
            refused = client.post("/predict", json={"text": "a joy"}, headers=headers)
            assert refused.status_code == 401 and "API key" in details(refused)
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/info", headers={"X-API-Key": "s3cret"}).status_code == 200
        schema = client.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()
        assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
        assert schema["paths"]["/predict"]["post"]["security"] == [{"APIKeyHeader": []}]
        ok = client.post(
            "/predict", json={"text": "a joy"}, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(ConfigError, match="--api-key"):
            check_bind(host, None)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        check_bind(host, None)
    result = CliRunner().invoke(cli, ["serve", str(cnn), "--host", "0.0.0.0"], env={})
    assert result.exit_code != 0 and "SEQLAB_API_KEY" in result.output


def test_a_crafted_pickle_is_refused_without_running(cnn: Path, tmp_path: Path) -> None:
    """A pickle whose loading runs code, planted as the weights and as the checkpoint."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return exec, (f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')",)

    run_dir = tmp_path / "run"
    shutil.copytree(cnn, run_dir, ignore=shutil.ignore_patterns("export"))
    (run_dir / "best.safetensors").write_bytes(pickle.dumps(Payload()))
    torch.save(Payload(), run_dir / "checkpoint.pt")
    with pytest.raises(RunDirError, match="not a safetensors file"):
        LoadedRun.load(run_dir)
    with pytest.raises(RunDirError, match="checkpoint refused"):
        load_checkpoint(run_dir / "checkpoint.pt")
    result = CliRunner().invoke(cli, ["serve", str(run_dir)])
    assert result.exit_code != 0 and "never unpickled" in result.output
    assert not marker.exists()
    # the payload is live: loaded the unsafe way, it does run
    torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert marker.read_text() == "ran"


def test_tag_endpoint(tagger_crf: Path) -> None:
    run = LoadedRun.load(tagger_crf)
    with TestClient(create_app(run)) as client:
        sentences = ["the cat runs .", "dogs sleep", "a dog sleeps now"]
        expected = run.task.tag_sentences(  # type: ignore[attr-defined]
            run.cfg, run.model, run.data, [tuple(s.split()) for s in sentences]
        )
        for sentence, tags in zip(sentences, expected, strict=True):
            body = client.post("/tag", json={"text": sentence}).json()
            assert body == {"tokens": sentence.split(), "tags": tags}
        assert client.post("/tag", json={"text": "\n\t "}).status_code == 422
        assert client.get("/info").json()["labels"] == run.data.tags


def test_generate_endpoint_and_caps(lm_word: Path, lm_char: Path) -> None:
    settings = ServeSettings(max_generate_tokens=30)
    with TestClient(create_app(LoadedRun.load(lm_word), settings)) as client:
        request = {"prompt": "the cat", "max_tokens": 12, "temperature": 0.9, "seed": 3}
        body = client.post("/generate", json=request).json()
        expected = generate_text(lm_word, **request, top_k=0, top_p=1.0)
        assert body["prompt"] + body["text"] == expected and body["tokens"] == 12
        over = client.post("/generate", json={"prompt": "the", "max_tokens": 31})
        assert over.status_code == 422 and "less than or equal to 30" in details(over)
        for bad in ({"max_tokens": 0}, {"temperature": -1}, {"top_p": 0}, {"seed": "1"}):
            assert client.post("/generate", json=bad).status_code == 422
        for bad in ({"seed": True}, {"max_tokens": "5"}):  # no bool/str coercion to numbers
            assert "expected a number" in details(client.post("/generate", json=bad))
        tiny = {"prompt": "the", "max_tokens": 5, "temperature": 1e-300}  # greedy, no overflow
        greedy = {"prompt": "the", "max_tokens": 5, "temperature": 0}
        assert (
            client.post("/generate", json=tiny).json()
            == client.post("/generate", json=greedy).json()
        )
        # a top_p that rounds to 0 in float32 keeps the most likely token (was a 500)
        nucleus = client.post("/generate", json=greedy | {"temperature": 1, "top_p": 5e-324})
        assert nucleus.json()["text"] == client.post("/generate", json=greedy).json()["text"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]["GenerateRequest"]
        assert schema["properties"]["max_tokens"]["maximum"] == 30  # the cap is in the schema
    with TestClient(create_app(LoadedRun.load(lm_char))) as client:
        unknown = client.post("/generate", json={"prompt": "the Zebra"})
        assert unknown.status_code == 422 and "'Zbr' are not in" in details(unknown)


def test_concurrent_generate_requests_sample_together_as_alone(
    lm_word: Path, serve_live: Any
) -> None:
    """Prompts of different lengths, greedy and seeded sampling, different lengths: batched
    into shared model steps, each request gets the text ``seqlab generate`` gives alone."""
    run = LoadedRun.load(lm_word)
    prompts = ["the", "the cat", "", "a dog sat on"]
    bodies = [
        {"prompt": prompts[i % 4], "max_tokens": 4 + i % 7, "temperature": [0.9, 0, 1.5][i % 3],
         "top_k": [0, 3][i % 2], "seed": i}
        for i in range(16)
    ]  # fmt: skip
    expected = [
        generate_text(lm_word, **{"top_p": 1.0, "top_k": 0} | body)[len(body["prompt"]) :]
        for body in bodies
    ]
    service = create_app(run, ServeSettings(batch_wait_ms=100))
    with (
        serve_live(service) as url,
        httpx.Client(base_url=url) as http,
        ThreadPoolExecutor(len(bodies)) as pool,
    ):
        results = list(pool.map(lambda b: http.post("/generate", json=b), bodies))
        health = http.get("/health").json()
    assert [r.json()["text"] for r in results] == expected
    assert [r.json()["tokens"] for r in results] == [b["max_tokens"] for b in bodies]
    assert health["batches"] < len(bodies) and health["largest_batch"] > 1


def test_answer_endpoint_with_attention(babi: Path) -> None:
    run = LoadedRun.load(babi)
    story = ["Mary went to the kitchen.", "John went to the garden.", "Mary went to the office."]
    lines = [f"{i} {s}" for i, s in enumerate(story, 1)] + ["4 Where is Mary?"]
    expected = next(run.predict(lines)).split("\t")
    with TestClient(create_app(run)) as client:
        body = client.post("/answer", json={"story": story, "question": "Where is Mary?"}).json()
        assert body["answer"] == expected[1] and body["memories"] == story
        assert len(body["attention"]) == 2 and all(len(hop) == 3 for hop in body["attention"])
        assert all(sum(hop) == pytest.approx(1.0, abs=1e-5) for hop in body["attention"])
        most = [str(1 + max(range(3), key=hop.__getitem__)) for hop in body["attention"]]
        assert most == expected[2].split()
        # a statement's trailing '?' and TABs do not turn it into a question
        odd = client.post(
            "/answer", json={"story": ["Mary\twent to the garden?"], "question": "Where is Mary"}
        )
        assert odd.status_code == 200 and odd.json()["memories"] == ["Mary went to the garden"]
        assert client.post("/answer", json={"story": [], "question": "Where?"}).status_code == 422
        empty = client.post("/answer", json={"story": [" "], "question": "x"})
        assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "story", 0]


def test_endpoint_registry_and_path_stripping() -> None:
    assert {"lm_rnn", "classify", "tagging", "babi_qa", "translate"} <= set(ENDPOINTS.names())
    assert strip_paths({"a": "/x/y/z.txt", "b": ["C:\\d\\e.bin", 3], "c": "sst"}) == {
        "a": "z.txt",
        "b": ["e.bin", 3],
        "c": "sst",
    }
    assert json.dumps(strip_paths({"vectors": "~/w2v.bin"})) == '{"vectors": "w2v.bin"}'
    assert strip_paths(["https://arxiv.org/abs/1503.08895"]) == ["https://arxiv.org/abs/1503.08895"]


TOY = [
    "Der rot hund läuft im park.",
    "Der groß katze springt schnell im haus.",
    "Der mann schläft.",
]


def test_translate_gives_the_runs_translations_and_attention(translate: Path) -> None:
    greedy = LoadedRun.load(translate)
    beam = LoadedRun.load(translate, sets=["data.beam_size=3"])
    with TestClient(create_app(greedy, ServeSettings(max_beam=4))) as client:
        for run, options in ((greedy, {}), (beam, {"beam": 3})):
            body = client.post("/translate", json={"source": TOY} | options).json()
            assert body["beam"] == options.get("beam", 1)
            assert [t["translation"] for t in body["translations"]] == list(run.predict(TOY))
            assert all(t["attention"] is None for t in body["translations"])  # not asked
        asked = client.post("/translate", json={"source": TOY[1:2], "attention": True}).json()
        (one,) = asked["translations"]
        tokens, target, weights, text = greedy.task.align(  # type: ignore[attr-defined]
            greedy.cfg, greedy.model, greedy.data, TOY[1]
        )
        assert one["translation"] == text == "The big cat jumps quickly in the house."
        assert one["source_tokens"] == tokens and one["target_tokens"] == target
        assert target[-1] == "</s>" and one["finished"]
        np.testing.assert_allclose(np.array(one["attention"]), weights, atol=1e-6)
        assert np.array(one["attention"]).shape == (len(target), len(tokens))
        assert np.array(one["attention"]).sum(1) == pytest.approx(np.ones(len(target)), abs=1e-5)
        assert -5.0 < one["logprob"] <= 0.0
        # cut at max_len: an unfinished output of exactly that many tokens, no </s>
        cut = client.post("/translate", json={"source": TOY[:1], "max_len": 3, "attention": True})
        (short,) = cut.json()["translations"]
        assert short["target_tokens"] == ["The", "red", "dog"] and not short["finished"]
        assert len(short["attention"]) == 3
        # words the run never saw are <unk>, not an error
        unknown = client.post("/translate", json={"source": ["Der 日本 hund ☃ läuft im park."]})
        assert unknown.status_code == 200
        assert "dog" in unknown.json()["translations"][0]["translation"]
        schema = client.get("/openapi.json").json()
        request = schema["components"]["schemas"]["TranslateRequest"]["properties"]
        assert request["beam"]["anyOf"][0]["maximum"] == 4
        assert request["max_len"]["maximum"] == 256 and request["source"]["maxItems"] == 16
        info = client.get("/info").json()
        assert info["endpoint"] == "/translate" and info["kind"] == "translate"
        assert info["vocab_size"] == len(greedy.data.target_vocab)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": []}, "at least 1 item"),
        ({"source": [" "]}, "should match pattern"),
        ({"source": "Der mann schläft."}, "valid list"),
        ({"source": ["Der mann."] * 17}, "at most 16 items"),
        ({"source": ["x" * 201]}, "at most 200 characters"),
        ({"source": ["Der mann."], "beam": 9}, "less than or equal to 8"),
        ({"source": ["Der mann."], "beam": 0}, "greater than or equal to 1"),
        ({"source": ["Der mann."], "max_len": 257}, "less than or equal to 256"),
        ({"source": ["Der mann."], "max_len": "5"}, "expected a number"),
        ({"source": ["Der mann."], "attention": 1}, "valid boolean"),
        ({"source": ["Der mann."], "temperature": 1}, "Extra inputs"),
        ({"source": ["Der mann.", "\u00a0\u2003"]}, "no tokens left"),
    ],
)
def test_translate_bad_requests_are_422(translate: Path, body: Any, message: str) -> None:
    with TestClient(create_app(LoadedRun.load(translate), ServeSettings(max_text_chars=200))) as c:
        response = c.post("/translate", json=body)
    assert response.status_code == 422, response.text
    assert message in details(response)


def test_translate_batches_mixed_requests_as_alone(translate: Path) -> None:
    """Requests of one micro-batch with different beams, caps and sentence counts decode in
    groups; each gets what it gets alone."""
    run = LoadedRun.load(translate)
    model = create_app(run).openapi()  # the request model, as the service builds it
    assert "TranslateRequest" in model["components"]["schemas"]
    spec = ENDPOINTS.get("translate")
    Request = spec.request(ServeSettings())
    requests = [
        Request(source=TOY, attention=True),
        Request(source=TOY[2:], beam=2),
        Request(source=TOY[:2], max_len=4),
        Request(source=TOY[1:], beam=2, attention=True),
    ]
    together = spec.run(run, requests)
    alone = [spec.run(run, [r])[0] for r in requests]
    assert [len(t.translations) for t in together] == [3, 1, 2, 2]
    for batched, single in zip(together, alone, strict=True):
        assert batched.beam == single.beam
        for got, want in zip(batched.translations, single.translations, strict=True):
            numbers = ("logprob", "attention")
            assert got.model_dump(exclude=set(numbers)) == want.model_dump(exclude=set(numbers))
            assert got.logprob == pytest.approx(want.logprob, abs=1e-5)
            if want.attention is None:
                assert got.attention is None
            else:  # padded among longer sources: the same weights on the real ones
                np.testing.assert_allclose(got.attention, want.attention, atol=1e-5)
