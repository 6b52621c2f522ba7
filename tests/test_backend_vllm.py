"""The in-process ``vllm`` backend, as far as it runs without vLLM (GPU machines run the rest):
the per-request sampling settings, the reading of vLLM's outputs, prompt-logprob scoring, and the
one-line error where vLLM is missing."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from agentbench.backends import BackendOptions, SamplingParams, ScoreRequest, make_backend
from agentbench.backends.vllm import VLLMBackend, sampling_kwargs, scores_from_prompt_logprobs, to_completion
from agentbench.errors import EnvUnavailableError


@dataclass
class Logprob:
    logprob: float


@dataclass
class Output:
    text: str
    token_ids: list
    logprobs: list | None
    finish_reason: str


def test_sampling_kwargs_per_request():
    greedy = sampling_kwargs(SamplingParams(max_new_tokens=9, seed=4), seed=7, stop_ids=[2, 5])
    assert greedy == {"n": 1, "max_tokens": 9, "seed": 7, "temperature": 0.0, "top_p": 1.0,
                      "stop_token_ids": [2, 5], "skip_special_tokens": True}
    sampled = sampling_kwargs(SamplingParams(temperature=0.8, top_p=0.9, n=4, stop=("\n",), logprobs=True),
                              seed=1, stop_ids=[2])
    assert sampled["top_p"] == 0.9 and sampled["n"] == 4 and sampled["stop"] == ["\n"]
    assert sampled["logprobs"] == 0  # the sampled token's log-prob only


def test_completion_from_vllm_output():
    params = SamplingParams(logprobs=True, stop=("Obs",))
    out = Output(" go left Obs: x", [11, 12, 2], [{11: Logprob(-0.5)}, {12: Logprob(-1.0), 3: Logprob(-0.2)},
                                                 {2: Logprob(-0.1)}], "stop")
    c = to_completion([1, 2, 3], out, params)
    assert c.text == "go left" and c.token_ids == (11, 12, 2) and c.logprobs == (-0.5, -1.0, -0.1)
    assert c.prompt_ids == (1, 2, 3) and c.prompt_tokens == 3 and c.completion_tokens == 3
    assert to_completion([1], Output("x", [5], None, "length"), SamplingParams()).finish_reason == "length"


def test_scores_from_prompt_logprobs():
    req = ScoreRequest(prompt_ids=[1, 2], completion_ids=[7, 8])
    rows = [None, {2: Logprob(-3.0)}, {7: Logprob(-0.7), 9: Logprob(-0.1)}, {8: Logprob(-0.2), 4: Logprob(-2.0)}]
    assert scores_from_prompt_logprobs(req, rows, 0).logprobs == [-0.7, -0.2]
    top = scores_from_prompt_logprobs(req, rows, 1)
    assert top.top_ids == [[9], [8]] and top.top_logprobs == [[-0.1], [-0.2]]


def test_missing_vllm_is_one_line(tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(EnvUnavailableError, match=r"agentbench\[vllm\]") as err:
        make_backend("vllm", tiny_model, BackendOptions())
    assert "\n" not in str(err.value)
    assert {"score", "weight_update", "token_ids", "logprobs"} <= VLLMBackend.capabilities
