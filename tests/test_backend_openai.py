"""The ``openai`` backend against a local OpenAI-compatible server that serves the real ``hf``
tiny model (tests/openai_fake.py): same completions as ``hf``, bounded concurrency, retries on
transient errors, one-line errors on dead, slow or refusing servers."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from openai_fake import FakeServer, closed_port

from agentbench.backends import SCORE, BackendOptions, SamplingParams, make_backend, require
from agentbench.backends.openai import ServerError, wait_for_server
from agentbench.errors import ConfigError

CHATS = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "Count to three."}],
         [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]]


@pytest.fixture(scope="module")
def hf(tiny_model):
    backend = make_backend("hf", tiny_model, BackendOptions())
    yield backend
    backend.close()


def _openai(model, url: str, **options):
    return make_backend("openai", model, BackendOptions(base_url=url, **options))


def test_matches_hf_token_for_token(tiny_model, hf):
    params = SamplingParams(max_new_tokens=12, logprobs=True, seed=3)
    with FakeServer(hf) as server:
        backend = _openai(tiny_model, server.base_url, concurrency=2)
        assert backend.served_model == "fake-model"
        assert backend.describe()["chat_template_sha256"] == "unknown (owned by the server)"
        assert {"token_ids", "logprobs", "continue_final_message"} <= backend.capabilities
        assert backend.prompt_tokens(CHATS) == hf.prompt_tokens(CHATS)  # from the server's /tokenize
        got = backend.generate(CHATS, params)
        backend.close()
    # The backend sends chat i with seed + i; hf draws the same greedy tokens whatever the seed.
    want = hf.generate(CHATS, params)
    assert [c.token_ids for c in got] == [c.token_ids for c in want]
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.prompt_ids for c in got] == [c.prompt_ids for c in want]
    assert [c.prompt_tokens for c in got] == [c.prompt_tokens for c in want]
    for a, b in zip(got, want):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
        assert a.finish_reason == b.finish_reason


def test_requests_carry_seeds_n_and_stop_and_stay_bounded(tiny_model, hf):
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=4, seed=10, n=2, stop=("\n",))
    with FakeServer(hf) as server:
        backend = _openai(tiny_model, server.base_url, concurrency=2)
        got = backend.generate(CHATS * 2, params)
        backend.close()
    assert len(got) == len(CHATS) * 2 * 2  # n samples per chat, grouped chat by chat
    seeds = sorted(r["seed"] for r in server.requests)
    assert seeds == [10, 11, 12, 13, 14, 15]
    assert all(r["n"] == 2 and r["stop"] == ["\n"] and r["top_p"] == 0.9 for r in server.requests)
    assert 1 <= server.max_in_flight <= 2


def test_prompt_counts_from_a_local_tokenizer_when_the_server_has_none(tiny_model, hf):
    with FakeServer(hf, owned_by="llamacpp", chat_template="{{ messages }}") as server:
        backend = _openai(tiny_model, server.base_url)
        assert not backend._server_tokenize
        assert backend.prompt_tokens(CHATS) == hf.prompt_tokens(CHATS)
        assert "token_ids" not in backend.capabilities
        [c] = backend.generate(CHATS[:1], SamplingParams(max_new_tokens=4))
        assert c.token_ids == () and c.prompt_tokens == hf.prompt_tokens(CHATS[:1])[0]
        # what a non-vLLM server cannot do fails with one line naming the backends that can
        with pytest.raises(ConfigError, match=r"use one of: hf, vllm"):
            require(backend, SCORE, "scoring")
        with pytest.raises(ConfigError, match="continue"):
            backend.generate([[*CHATS[0], {"role": "assistant", "content": "Hel"}]], SamplingParams())
        assert backend.describe()["chat_template_sha256"] == hashlib.sha256(b"{{ messages }}").hexdigest()
        backend.close()


def test_transient_errors_are_retried(tiny_model, hf):
    with FakeServer(hf, mode="flaky", fail_first=2) as server:
        backend = _openai(tiny_model, server.base_url, request_retries=3)
        [c] = backend.generate(CHATS[:1], SamplingParams(max_new_tokens=3))
        backend.close()
    assert len(server.requests) == 3 and c.completion_tokens > 0


def test_busy_server_gives_one_line_error_after_retries(tiny_model):
    with FakeServer(None, mode="503") as server:
        backend = _openai(tiny_model, server.base_url, request_retries=2, tokenizer=tiny_model.path)
        with pytest.raises(ServerError) as err:
            backend.generate(CHATS[:1], SamplingParams())
        backend.close()
    assert len(server.requests) == 3
    message = str(err.value)
    assert "\n" not in message and "failed 3 time(s)" in message and "HTTP 503: server busy" in message


def test_slow_server_times_out(tiny_model):
    with FakeServer(None, mode="hang", hang_s=5) as server:
        backend = _openai(tiny_model, server.base_url, request_retries=1, request_timeout_s=0.3, tokenizer=tiny_model.path)
        started = time.perf_counter()
        with pytest.raises(ServerError, match=r"no answer within 0.3 s"):
            backend.generate(CHATS[:1], SamplingParams())
        assert time.perf_counter() - started < 4
        backend.close()


def test_permanent_errors_are_not_retried(tiny_model):
    with FakeServer(None, mode="400") as server:
        backend = _openai(tiny_model, server.base_url, request_retries=3, tokenizer=tiny_model.path)
        with pytest.raises(ServerError, match=r"HTTP 400: max_tokens is too large"):
            backend.generate(CHATS[:1], SamplingParams())
        backend.close()
    assert len(server.requests) == 1


def test_dead_server_and_missing_url(tiny_model):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(ServerError, match="cannot connect") as err:
        _openai(tiny_model, url, request_retries=1)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="base_url"):
        make_backend("openai", tiny_model, BackendOptions())


def test_server_options_do_not_change_run_identity():
    plain = BackendOptions().model_dump(mode="json")
    assert BackendOptions(base_url="http://x/v1", concurrency=3, request_retries=0, request_timeout_s=5).model_dump() == plain
    assert BackendOptions(tokenizer="t").model_dump()["tokenizer"] == "t"


@pytest.mark.slow
def test_eval_through_openai_matches_hf(tiny_model, hf, tmp_path):
    """`agentbench eval --backend openai --set base_url=...` plays the same episodes as hf."""
    from typer.testing import CliRunner

    from agentbench.cli import app

    sets = ["--set", "budget.eval_tasks=3", "--set", "budget.forgetting=false", "--set", "budget.max_new_tokens=16"]
    runner = CliRunner()
    with FakeServer(hf) as server:
        served = runner.invoke(app, ["eval", "--env", "frozenlake", "--model", "tiny", "--backend", "openai",
                                     "--set", f"base_url={server.base_url}", *sets, "--out", str(tmp_path / "o"),
                                     "-q"])
    assert served.exit_code == 0, served.output
    local = runner.invoke(app, ["eval", "--env", "frozenlake", "--model", "tiny", *sets,
                                "--out", str(tmp_path / "h"), "-q"])
    assert local.exit_code == 0, local.output

    def episodes(folder):
        [f] = list(folder.glob("*/episodes.jsonl"))
        return [{k: e[k] for k in ("task_id", "success", "turns", "trajectory_sha256")}
                for e in map(json.loads, f.read_text().splitlines())]

    assert episodes(tmp_path / "o") == episodes(tmp_path / "h")
    [result] = (tmp_path / "o").glob("*/result.json")
    assert json.loads(result.read_text())["model"]["backend"] == "openai"


def test_cli_dead_server_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from agentbench.cli import app

    url = f"http://127.0.0.1:{closed_port()}/v1"
    res = CliRunner().invoke(app, ["eval", "--env", "frozenlake", "--model", "tiny", "--backend", "openai",
                                   "--set", f"base_url={url}", "--set", "request_retries=0", "--set",
                                   "budget.forgetting=false", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: openai backend:") and "cannot connect" in lines[0]


def test_wait_for_server_returns_when_up_and_names_a_dead_one(hf, tmp_path):
    with FakeServer(hf) as server:
        wait_for_server(server.base_url, timeout_s=10)
    import subprocess
    import sys

    log = tmp_path / "server.log"
    log.write_text("address already in use\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(ServerError, match=r"exited with 3: address already in use"):
        wait_for_server(f"http://127.0.0.1:{closed_port()}/v1", proc=proc, log=log, timeout_s=10)
    with pytest.raises(ServerError, match=r"within 0\.1 s"):
        wait_for_server(f"http://127.0.0.1:{closed_port()}/v1", timeout_s=0.1)
