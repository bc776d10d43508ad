"""Load test of ``seqlab serve`` on loopback: N concurrent clients, a fixed number of requests.

Starts ``seqlab serve RUN_DIR`` in its own process on a free loopback port (so client and
server do not share a GIL), waits for ``/health``, then lets ``--clients`` asyncio clients
send ``--requests`` POSTs to the run's endpoint between them (bodies built from the run's
``/info``: varied sentences, prompts with varied seeds, or the example story), bounded by
``--time-limit`` seconds. Prints one JSON line: throughput, latency p50/p90/p99, errors,
and the server's batching counters. With ``--compare-unbatched`` it measures twice, back to
back under the same load: the server as given, then a fresh one with ``--max-batch 1``
(every request its own model call), and prints both and the throughput ratio.

    PYTHONPATH=src python benchmarks/serve_load.py RUN_DIR --clients 16 --requests 2000 \\
        [--server-arg=--max-batch=1] [--compare-unbatched]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "the film is strictly routine .",
    "an uneven but often funny comedy about growing up",
    "it 's a bad sign when you 're rooting for the villain .",
    "one of the best films of the year",
    "the plot is nothing but boilerplate clichés from start to finish",
    "a warm , funny , engaging film .",
    "too long and too boring",
    "the performances are uniformly excellent",
    "this is n't a new idea",
    "a masterpiece of quiet power",
    "dull , lifeless and badly acted",
]


def bodies(info: dict[str, Any], count: int) -> list[dict[str, Any]]:
    kind = info["kind"]
    if kind == "generate":
        return [{"prompt": "the", "max_tokens": 20, "seed": i} for i in range(count)]
    if kind == "answer":
        return [info["example"]] * count
    if kind == "translate":
        return [info["example"] | {"attention": False}] * count
    return [{"text": SENTENCES[i % len(SENTENCES)]} for i in range(count)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def load(
    url: str, path: str, payloads: list[dict[str, Any]], clients: int, limit: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    queue = list(reversed(payloads))
    deadline = time.monotonic() + limit
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        while queue and time.monotonic() < deadline:
            body = queue.pop()
            start = time.perf_counter()
            try:
                response = await http.post(path, json=body)
                key = str(response.status_code)
            except httpx.HTTPError as err:
                key = type(err).__name__
            latencies.append(time.perf_counter() - start)
            statuses[key] = statuses.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    latencies.sort()

    def quantile(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    done = len(latencies)
    return {
        "requests": done,
        "not_sent": len(queue),
        "wall_s": round(wall, 3),
        "throughput_rps": round(done / wall, 1),
        "p50_ms": round(quantile(0.50), 2),
        "p90_ms": round(quantile(0.90), 2),
        "p99_ms": round(quantile(0.99), 2),
        "errors": done - statuses.get("200", 0),
        "statuses": statuses,
    }


def measure(args: argparse.Namespace, server_args: list[str]) -> dict[str, Any]:
    """Start a server with ``server_args``, warm it up, load it; its numbers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "seqlab.cli", "serve", args.run_dir, "--port", str(port)]
    server = subprocess.Popen(command + server_args, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        info = httpx.get(f"{url}/info").json()
        path = info["endpoint"]
        asyncio.run(load(url, path, bodies(info, args.warmup), args.clients, args.time_limit))
        before = httpx.get(f"{url}/health").json()
        result = asyncio.run(
            load(url, path, bodies(info, args.requests), args.clients, args.time_limit)
        )
        after = httpx.get(f"{url}/health").json()
        batches = after["batches"] - before["batches"]
        result.update(
            task=info["task"],
            endpoint=path,
            clients=args.clients,
            server_args=server_args,
            batches=batches,
            mean_batch=round((after["requests"] - before["requests"]) / max(batches, 1), 2),
            largest_batch=after["largest_batch"],
        )
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--server-arg", action="append", default=[], help="passed to seqlab serve")
    parser.add_argument(
        "--compare-unbatched",
        action="store_true",
        help="measure again with --max-batch 1 and report both",
    )
    args = parser.parse_args()
    batched = measure(args, args.server_arg)
    if not args.compare_unbatched:
        print(json.dumps(batched))
        return
    unbatched = measure(args, [*args.server_arg, "--max-batch=1"])
    ratio = batched["throughput_rps"] / max(unbatched["throughput_rps"], 1e-9)
    print(json.dumps({"batched": batched, "unbatched": unbatched, "speedup": round(ratio, 2)}))


if __name__ == "__main__":
    main()
