"""The transformers backend: batched, left-padded generation with the model's chat template,
the sampled token ids and their log-probs, scoring of given completions, and weights shared
in process with a trainer (on-policy training without a disk round trip)."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

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
from agentbench.errors import AgentbenchError
from agentbench.models import ModelRef


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "auto":
        # bf16 on this class of CPU is ~15x slower than fp32; GPUs want bf16.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, requested)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise AgentbenchError(f"model {path} has no chat template; agentbench needs a chat model")
    return tokenizer


def chat_template_sha256(tokenizer) -> str:
    return hashlib.sha256((tokenizer.chat_template or "").encode()).hexdigest()


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant turn: EOS plus the template's end-of-turn marker."""
    ids = {tokenizer.eos_token_id}
    for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


def render(tokenizer, prompts: Sequence[Messages]) -> list[str]:
    """Chat-templated text; a chat that ends with an assistant message is continued."""
    return [
        tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=p[-1]["role"] != "assistant",
                                      continue_final_message=p[-1]["role"] == "assistant")
        for p in prompts
    ]


class _LogprobRecorder:
    """A logits processor that records log p(sampled token) under the sampling distribution.

    It runs before generate's temperature warper, so it sees raw logits; it keeps only the last
    step's log-softmax and gathers it when the next step's input shows which token was drawn, so
    memory stays one (batch, vocab) slice whatever the length."""

    def __init__(self, temperature: float):
        self.temperature = temperature if temperature > 0 else 1.0
        self.previous: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._gather(input_ids[:, -1])
        self.previous = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _gather(self, chosen: torch.Tensor) -> None:
        if self.previous is not None:
            self.steps.append(self.previous.gather(1, chosen[:, None]).squeeze(1).cpu())
            self.previous = None

    def finish(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """(batch, steps) log-probs, after generate returned the final tokens."""
        self._gather(last_tokens)
        return torch.stack(self.steps, dim=1) if self.steps else torch.zeros(last_tokens.shape[0], 0)


def padded(seqs: Sequence[Sequence[int]], pad: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of ``seqs`` padded to one width (at least 1), on the left or
    the right."""
    width = max(1, max((len(s) for s in seqs), default=0))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        cols = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, cols] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


class HFBackend:
    """transformers on CPU or GPU: batched generation, left padding, the chat template."""

    name = "hf"
    capabilities = frozenset({TOKEN_IDS, LOGPROBS, SCORE, CONTINUE, WEIGHT_UPDATE})

    def __init__(self, model: ModelRef, options: BackendOptions, *, module: Any = None, tokenizer: Any = None):
        self.model_ref = model
        self.options = options
        if module is not None:
            # Share a trainer's module: the weights it updates are the weights we sample from.
            self.model, self.tokenizer = module, tokenizer
            self.device = next(module.parameters()).device
            self.dtype = next(module.parameters()).dtype
            self.owns_model = False
        else:
            from transformers import AutoModelForCausalLM

            self.device = pick_device(options.device)
            self.dtype = pick_dtype(options.dtype, self.device)
            try:
                self.tokenizer = load_tokenizer(model.path)
                self.model = AutoModelForCausalLM.from_pretrained(model.path, dtype=self.dtype).to(self.device)
            except OSError as exc:
                raise AgentbenchError(f"cannot load model {model.name!r} from {model.path}: {exc}") from exc
            self.model.eval()
            self.owns_model = True
        self.tokenizer.padding_side = "left"
        self.stop_ids = end_of_turn_ids(self.tokenizer)
        # transformers 5.2x names the KV cache argument ``cache`` (``past_key_values`` before)
        forward = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"

    @classmethod
    def sharing(cls, module: Any, tokenizer: Any, model: ModelRef,
                options: BackendOptions | None = None) -> HFBackend:
        """A backend over ``module`` itself (no copy): what a trainer updates is sampled next."""
        from agentbench.training import distributed

        distributed.require_unsharded("an online method (grpo, spear, oel)")
        return cls(model, options or BackendOptions(), module=module, tokenizer=tokenizer)

    def render(self, prompts: Sequence[Messages]) -> list[str]:
        return render(self.tokenizer, prompts)

    def encode(self, prompts: Sequence[Messages]) -> list[list[int]]:
        return list(self.tokenizer(self.render(prompts), add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        return [len(ids) for ids in self.encode(prompts)]

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[Completion]:
        from transformers import GenerationConfig, LogitsProcessorList

        encoded = [ids for ids in self.encode(prompts) for _ in range(params.n)]
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=params.temperature > 0,
            temperature=params.temperature if params.temperature > 0 else None,
            top_p=params.top_p if params.temperature > 0 else None,
            top_k=None,
            eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(params.stop) or None,
        )
        was_training = self.model.training
        self.model.eval()
        out: list[Completion] = []
        size = self.options.max_batch_size
        try:
            for start in range(0, len(encoded), size):
                chunk = encoded[start : start + size]
                input_ids, mask = padded(chunk, self.tokenizer.pad_token_id, left=True)
                input_ids, mask = input_ids.to(self.device), mask.to(self.device)
                width = input_ids.shape[1]
                recorder = _LogprobRecorder(params.temperature) if params.logprobs else None
                torch.manual_seed(params.seed + start)
                generated = self.model.generate(
                    input_ids=input_ids, attention_mask=mask, generation_config=config,
                    logits_processor=LogitsProcessorList([recorder]) if recorder else None,
                    tokenizer=self.tokenizer if params.stop else None)
                new_tokens = generated[:, width:]
                logprobs = recorder.finish(new_tokens[:, -1]).tolist() if recorder else None
                for row, ids in enumerate(chunk):
                    out.append(self._completion(new_tokens[row].tolist(), ids, params,
                                                logprobs[row] if logprobs is not None else None))
        finally:
            if was_training:
                self.model.train()
        return out

    def _completion(self, row: list[int], prompt_ids: list[int], params: SamplingParams,
                    logprobs: list[float] | None) -> Completion:
        stop_at = next((i for i, tok in enumerate(row) if tok in self.stop_ids), None)
        kept = row if stop_at is None else row[:stop_at]
        sampled = row if stop_at is None else row[: stop_at + 1]  # the end-of-turn token was sampled too
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        hit_string = False
        for s in params.stop:
            if s in text:
                text, hit_string = text[: text.index(s)], True
        n = len(sampled)
        reason = "stop" if stop_at is not None or hit_string or n < params.max_new_tokens else "length"
        return Completion(text=text.strip(), raw_text=text, prompt_tokens=len(prompt_ids), completion_tokens=n,
                          finish_reason=reason, prompt_ids=tuple(prompt_ids), token_ids=tuple(sampled),
                          logprobs=tuple(logprobs[:n]) if logprobs is not None else None)

    @torch.inference_mode()
    def score(self, requests: Sequence[ScoreRequest], top_k: int = 0) -> list[TokenScores]:
        """Per-token log-probs of each completion given its prompt (temperature 1), with the
        top-k of the distribution at each completion position when ``top_k`` > 0. Completions
        that share a prompt (the admissible actions of one state, say) run the prompt once and
        continue from its KV cache."""
        was_training = self.model.training
        self.model.eval()
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(tuple(r.prompt_ids), []).append(i)
        scored: dict[int, TokenScores] = {}
        size = self.options.max_batch_size
        try:
            single = [idx[0] for idx in groups.values() if len(idx) == 1]
            for start in range(0, len(single), size):
                chunk = single[start : start + size]
                scored.update(zip(chunk, self._score_whole([requests[i] for i in chunk], top_k)))
            batch: list[list[int]] = []
            for idx in (idx for idx in groups.values() if len(idx) > 1):
                if batch and sum(map(len, batch)) + len(idx) > size:
                    scored.update(self._score_shared(requests, batch, top_k))
                    batch = []
                batch.append(idx)
            if batch:
                scored.update(self._score_shared(requests, batch, top_k))
        finally:
            if was_training:
                self.model.train()
        return [scored[i] for i in range(len(requests))]

    @staticmethod
    def _scores(dist: torch.Tensor, completion: Sequence[int], top_k: int) -> TokenScores:
        """``dist``: log-probs at each completion position ([len(completion), vocab])."""
        target = torch.tensor(list(completion), dtype=torch.long, device=dist.device)
        lp = dist.gather(1, target[:, None]).squeeze(1).tolist()
        if top_k > 0:
            vals, idx = dist.topk(min(top_k, dist.shape[-1]), dim=-1)
            return TokenScores(lp, idx.tolist(), vals.tolist())
        return TokenScores(lp)

    def _score_whole(self, chunk: Sequence[ScoreRequest], top_k: int) -> list[TokenScores]:
        """Each prompt and completion as one right-padded sequence; logits only at the columns
        that predict some completion token (the vocabulary projection skips the prompts)."""
        ids, mask = padded([[*r.prompt_ids, *r.completion_ids] for r in chunk], self.tokenizer.pad_token_id)
        lo = max(min(len(r.prompt_ids) for r in chunk) - 1, 0)
        hi = max(len(r.prompt_ids) + len(r.completion_ids) for r in chunk) - 1
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                            logits_to_keep=torch.arange(lo, hi, device=self.device)).logits
        out = []
        for i, r in enumerate(chunk):
            p, c = len(r.prompt_ids) - 1 - lo, len(r.completion_ids)
            out.append(self._scores(torch.log_softmax(logits[i, p : p + c].float(), dim=-1), r.completion_ids, top_k))
        return out

    def _score_shared(self, requests: Sequence[ScoreRequest], groups: list[list[int]],
                      top_k: int) -> dict[int, TokenScores]:
        """Groups of requests with one prompt each: the prompts once (left-padded, KV cache kept),
        then every completion from its prompt's cache."""
        prompts = [list(requests[g[0]].prompt_ids) for g in groups]
        lengths = torch.tensor([len(p) for p in prompts])
        ids, mask = padded(prompts, self.tokenizer.pad_token_id, left=True)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        head = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                          position_ids=positions.to(self.device), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(head.logits[:, -1].float(), dim=-1)  # predicts each completion's first token
        rows = [i for g in groups for i in g]
        owner = torch.tensor([u for u, g in enumerate(groups) for _ in g])
        cache = getattr(head, self._cache_arg)
        cache.reorder_cache(owner.to(self.device))
        cids, cmask = padded([list(requests[i].completion_ids) for i in rows], self.tokenizer.pad_token_id)
        span = cids.shape[1]
        logits = self.model(input_ids=cids.to(self.device),
                            attention_mask=torch.cat([mask[owner], cmask], dim=1).to(self.device),
                            position_ids=(lengths[owner][:, None] + torch.arange(span)[None]).to(self.device),
                            use_cache=False, **{self._cache_arg: cache}).logits
        out: dict[int, TokenScores] = {}
        for k, i in enumerate(rows):
            c = len(requests[i].completion_ids)
            dist = torch.cat([first[owner[k]][None], torch.log_softmax(logits[k, : max(c - 1, 0)].float(), dim=-1)])
            out[i] = self._scores(dist[:c], requests[i].completion_ids, top_k)
        return out

    def update_weights(self, weights: Path | Mapping[str, Any]) -> None:
        """Load new weights: a model folder (safetensors) or a state dict. A backend that shares
        its trainer's module already samples from the updated weights and needs neither."""
        if isinstance(weights, (str, Path)):
            from transformers import AutoModelForCausalLM

            fresh = AutoModelForCausalLM.from_pretrained(str(weights), dtype=self.dtype)
            weights = fresh.state_dict()
        self.model.load_state_dict(dict(weights), strict=False)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "chat_template_sha256": chat_template_sha256(self.tokenizer),
        }

    def close(self) -> None:
        if self.owns_model:
            del self.model
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
