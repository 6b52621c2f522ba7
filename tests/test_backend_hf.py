"""The transformers backend: left-padded batches give the same greedy text as single prompts."""

from __future__ import annotations

import pytest

from agentbench.backends import BackendOptions, SamplingParams, make_backend
from agentbench.training.examples import ChatExample, tokenize_example

PROMPTS = [
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "A much longer question that forces padding of the others in the batch?"}],
    [{"role": "user", "content": "Count: one two three four five six"}],
]


@pytest.fixture(scope="module")
def backend(tiny_model):
    b = make_backend("hf", tiny_model, BackendOptions(max_batch_size=8))
    yield b
    b.close()


def test_batched_greedy_equals_one_at_a_time(backend):
    params = SamplingParams(max_new_tokens=12)
    batched = backend.generate(PROMPTS, params)
    single = [backend.generate([p], params)[0] for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]
    assert [c.prompt_tokens for c in batched] == backend.prompt_tokens(PROMPTS)


def test_sampling_is_seeded(backend):
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=3)
    assert [c.text for c in backend.generate(PROMPTS, params)] == [c.text for c in backend.generate(PROMPTS, params)]


def test_length_limit_is_reported(backend):
    (c,) = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=3))
    assert c.completion_tokens <= 3
    assert c.finish_reason in ("length", "stop")


def test_describe_records_the_chat_template(backend):
    info = backend.describe()
    assert info["backend"] == "hf" and info["dtype"] == "float32" and len(info["chat_template_sha256"]) == 64


def test_loss_falls_on_assistant_tokens_only(backend):
    tok = backend.tokenizer
    example = ChatExample((
        {"role": "system", "content": "rules"}, {"role": "user", "content": "obs"},
        {"role": "assistant", "content": "Action: up"}, {"role": "user", "content": "obs2"},
        {"role": "assistant", "content": "Action: down"},
    ))
    t = tokenize_example(tok, example, 512)
    trained = tok.decode([i for i, label in zip(t.input_ids, t.labels) if label != -100])
    assert trained == "Action: up<|im_end|>Action: down<|im_end|>"
    only_last = tokenize_example(tok, ChatExample(example.messages, train_on=(4,)), 512)
    assert tok.decode([i for i, lab in zip(only_last.input_ids, only_last.labels) if lab != -100]) == \
        "Action: down<|im_end|>"
    assert tokenize_example(tok, example, 8) is None  # cut before any reply: dropped


def test_whole_sequence_scores_equal_the_full_logits(backend):
    """Scoring projects to the vocabulary only the columns that predict completion tokens; the
    log-probs must be those of the full forward pass, for prompts and completions of different
    lengths in one padded batch."""
    import torch

    from agentbench.backends import ScoreRequest

    requests = [ScoreRequest([1, 2, 3, 4, 5, 6], [20, 21]), ScoreRequest([7, 8], [30, 31, 32, 33]),
                ScoreRequest([9, 10, 11], [40])]
    got = backend._score_whole(requests, top_k=0)
    for r, scores in zip(requests, got):
        ids = torch.tensor([[*r.prompt_ids, *r.completion_ids]])
        with torch.no_grad():
            logp = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), dim=-1)
        p = len(r.prompt_ids)
        want = [float(logp[p - 1 + t, tok]) for t, tok in enumerate(r.completion_ids)]
        assert scores.logprobs == pytest.approx(want, abs=1e-5)


def test_completions_sharing_a_prompt_score_as_if_scored_alone(backend):
    """Shared prompts run once and continue from their KV cache; the scores match scoring every
    request as one whole sequence (prompts of different lengths, completions of different
    lengths, an unshared request and an empty completion in the same call)."""
    from agentbench.backends import ScoreRequest

    short, long = [1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12, 13]
    requests = [ScoreRequest(short, [20, 21, 22]), ScoreRequest(long, [30]), ScoreRequest(short, [23]),
                ScoreRequest([40, 41], [42, 43]), ScoreRequest(long, [31, 32, 33, 34]), ScoreRequest(short, []),
                ScoreRequest(short, [20, 21, 22])]
    together = backend.score(requests, top_k=5)
    alone = [backend.score([r], top_k=5)[0] for r in requests]  # one request: the whole-sequence path
    for got, want, r in zip(together, alone, requests):
        assert len(got.logprobs) == len(r.completion_ids)
        assert got.logprobs == pytest.approx(want.logprobs, abs=1e-4)
        assert got.top_ids == want.top_ids
        assert [v for row in got.top_logprobs for v in row] == pytest.approx(
            [v for row in want.top_logprobs for v in row], abs=1e-4)
    assert together[0].logprobs == together[6].logprobs
