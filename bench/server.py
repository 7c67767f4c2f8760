"""The REST server: /status latency under load, chat proxy overhead, and the crash soak.

Run: python bench/server.py                 (latency + overhead, about a minute)
     python bench/server.py --soak          (also 100 jobs across 5 crashes, a few minutes)

* ``/status/{job_id}`` latency (p50/p95/p99) with 50 concurrent clients;
* chat completion through ``forge serve`` against calling the model server directly
  (median of sequential requests, plain and streamed; goal: overhead <= 10 %). The
  model server is llama.cpp's (``python -m llama_cpp.server``) when llama-cpp-python
  is installed and ``FORGE_BENCH_GGUF`` names a GGUF file, else the tests' fake
  OpenAI-compatible server imitating generation at ``--token-ms`` per token; the
  output says which;
* ``--soak``: jobs submitted across SIGKILLs of the server (and, every other time, its
  workers); every job must reach a terminal state, none lost or duplicated.

The server runs the tests' toy plugin (no torch), so the figures measure the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HELPERS = Path(__file__).resolve().parents[1] / "tests" / "plugins" / "forge_server"
sys.path.insert(0, str(HELPERS))

from fake_upstream import FakeUpstream  # noqa: E402
from server_helpers import ServerProcess, crash_soak, make_repo, wait_for, write_forge_toml  # noqa: E402

QUESTION = "explain what the transfer function in stock.go does and when it fails"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@contextlib.contextmanager
def model_server(token_ms: float) -> Iterator[tuple[str, int]]:
    """(description, port) of the model server to proxy to."""
    gguf = os.environ.get("FORGE_BENCH_GGUF")
    if gguf and importlib.util.find_spec("llama_cpp") is not None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = [sys.executable, "-m", "llama_cpp.server", "--model", gguf]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200:
                        break
                time.sleep(0.5)
            else:
                raise RuntimeError("llama_cpp.server did not start")
            yield f"llama.cpp server (llama-cpp-python) on {Path(gguf).name}", port
        finally:
            process.terminate()
            process.wait(timeout=30)
        return
    reason = "FORGE_BENCH_GGUF unset" if not gguf else "llama-cpp-python not installed"
    with FakeUpstream(token_delay=token_ms / 1000) as fake:
        yield f"fake OpenAI-compatible server, {token_ms} ms/token ({reason})", fake.port


async def status_latency(
    url: str, key: str, job_id: str, clients: int, each: int
) -> tuple[list[float], float]:
    """Latencies of ``clients`` concurrent clients doing ``each`` sequential GETs, and wall time."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:

        async def one_client() -> list[float]:
            times = []
            for _ in range(each):
                started = time.perf_counter()
                response = await http.get(f"/status/{job_id}")
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
            return times

        started = time.perf_counter()
        results = await asyncio.gather(*(one_client() for _ in range(clients)))
        wall = time.perf_counter() - started
    return [t for batch in results for t in batch], wall


def chat_times(base_url: str, key: str | None, model: str, runs: int, stream: bool) -> list[float]:
    """Wall times of ``runs`` sequential chat completions (to the last byte)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {
        "model": model,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 32,
        "temperature": 0,
        "stream": stream,
    }
    times = []
    with httpx.Client(headers=headers, timeout=300) as http:
        http.post(f"{base_url}/chat/completions", json=body).read()  # warm-up
        for _ in range(runs):
            started = time.perf_counter()
            with http.stream("POST", f"{base_url}/chat/completions", json=body) as response:
                assert response.status_code == 200, response.read()
                for _ in response.iter_bytes():
                    pass
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="Per client.")
    parser.add_argument("--chat-runs", type=int, default=30)
    parser.add_argument("--token-ms", type=float, default=10.0)
    parser.add_argument("--soak", action="store_true", help="Also run 100 jobs / 5 crashes.")
    parser.add_argument("--soak-jobs", type=int, default=100)
    parser.add_argument("--soak-crashes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, model_server(args.token_ms) as (upstream, port):
        work = Path(tmp)
        root = make_repo(work / "root" / "repo").parent
        server = ServerProcess(work / "runs", root, write_forge_toml(work, port)).start()
        try:
            with server.client() as http:
                job_id = http.post("/v1/fine-tune", json={"repository": "repo"}).json()["job_id"]
                status = wait_for(http, job_id)
            assert status["state"] == "succeeded", status
            latencies, wall = asyncio.run(
                status_latency(
                    server.url, server.api_key or "", job_id, args.clients, args.requests
                )
            )
            print(f"/status latency, {args.clients} concurrent clients x {args.requests} requests")
            for q in (50, 95, 99):
                print(f"  p{q:<3} {percentile(latencies, q) * 1000:8.1f} ms")
            rate = len(latencies) / wall
            print(f"  throughput {rate:8.0f} req/s (client and server share the CPUs)")
            print(f"chat completions against: {upstream}")
            for stream in (False, True):
                direct = chat_times(
                    f"http://127.0.0.1:{port}/v1", None, status["model"], args.chat_runs, stream
                )
                proxied = chat_times(
                    f"{server.url}/v1", server.api_key, status["model"], args.chat_runs, stream
                )
                d, p = statistics.median(direct), statistics.median(proxied)
                label = "streamed" if stream else "plain"
                print(
                    f"  {label:<9} direct {d * 1000:7.1f} ms   via forge serve {p * 1000:7.1f} ms"
                    f"   overhead {p - d:+.4f} s = {100 * (p - d) / d:+.1f} % (goal <= 10 %)"
                )
        finally:
            server.stop()
    if args.soak:
        with tempfile.TemporaryDirectory() as tmp:
            summary = crash_soak(
                Path(tmp),
                args.soak_jobs,
                args.soak_crashes,
                timeout=1800,
                report=lambda line: print(f"  {line}", flush=True),
            )
        print(f"crash soak: {summary}")


if __name__ == "__main__":
    main()
