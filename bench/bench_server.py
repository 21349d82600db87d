"""Bounded load run against `cptbot serve` on loopback: throughput, p50/p99 latency, errors.

    python bench/bench_server.py                       # 10,000 requests, 32 connections, 1 and 2 workers
    python bench/bench_server.py --requests 2000 --workers 1

Each run starts a real server (uvicorn, access log on, to /dev/null) on 127.0.0.1 on a
free port, warms it up, then sends POST /v1/match with real FAQ phrasings (and every
tenth request a /v1/converse turn) over `--concurrency` keep-alive connections from one
httpx AsyncClient. Loopback only: the address is fixed, not an option. Note the client
shares the machine's cores with the server, so figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
QUESTIONS = [
    "who sells the cpt license",
    "do i need a license if we don't use cpt codes",
    "how is the annual cpt license fee calculated?",
    "why isn't the cpt license included in the monthly fee",
    "how do i reach practice fusion sales",
    "what is the weather in paris tomorrow",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start(workers: int, port: int) -> subprocess.Popen:
    code = (
        "from cptbot import load_faq; from cptbot.server import serve; "
        f"serve(load_faq(), host={HOST!r}, port={port}, workers={workers})"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
    proc.kill()
    raise SystemExit("server did not start")


async def load(port: int, requests: int, concurrency: int) -> tuple[list[float], int, float]:
    base = f"http://{HOST}:{port}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(n: int) -> None:
            nonlocal errors
            text = QUESTIONS[n % len(QUESTIONS)]
            t0 = time.perf_counter()
            try:
                if n % 10 == 9:
                    r = await client.post(
                        "/v1/converse", json={"text": "what will my practice pay for its cpt license?"}
                    )
                else:
                    r = await client.post("/v1/match", json={"text": text})
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - t0) * 1000)

        async def worker() -> None:
            for n in counter:
                await one(n)

        for n in range(min(200, requests)):  # warm-up, not counted
            await client.post("/v1/match", json={"text": QUESTIONS[n % len(QUESTIONS)]})
        start_time = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start_time
    return latencies, errors, elapsed


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def run(workers: int, requests: int, concurrency: int) -> dict:
    port = free_port()
    proc = start(workers, port)
    try:
        latencies, errors, elapsed = asyncio.run(load(port, requests, concurrency))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {
        "workers": workers,
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "rps": round(requests / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}  host: {HOST}  requests: {args.requests}  concurrency: {args.concurrency}")
    print(f"{'workers':>7} {'seconds':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    failed = False
    for workers in args.workers:
        r = run(workers, args.requests, args.concurrency)
        print(
            f"{r['workers']:>7} {r['seconds']:>8} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['errors']:>6}",
            flush=True,
        )
        failed |= r["errors"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
