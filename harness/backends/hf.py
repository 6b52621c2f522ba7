"""The transformers backend: batched, left-padded generation with the model's chat template."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch

from agentbench.backends import BackendOptions, Completion, Messages, SamplingParams
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


class HFBackend:
    """transformers on CPU or GPU: batched generation, left padding, the chat template."""

    name = "hf"

    def __init__(self, model: ModelRef, options: BackendOptions):
        from transformers import AutoModelForCausalLM

        self.model_ref = model
        self.options = options
        self.device = pick_device(options.device)
        self.dtype = pick_dtype(options.dtype, self.device)
        try:
            self.tokenizer = load_tokenizer(model.path)
            self.model = AutoModelForCausalLM.from_pretrained(model.path, dtype=self.dtype).to(self.device)
        except OSError as exc:
            raise AgentbenchError(f"cannot load model {model.name!r} from {model.path}: {exc}") from exc
        self.model.eval()
        self.tokenizer.padding_side = "left"
        self.stop_ids = end_of_turn_ids(self.tokenizer)

    def render(self, prompts: Sequence[Messages]) -> list[str]:
        """Chat-templated text; a chat that ends with an assistant message is continued."""
        return [
            self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=p[-1]["role"] != "assistant",
                                               continue_final_message=p[-1]["role"] == "assistant")
            for p in prompts
        ]

    def prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        texts = self.render(prompts)
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Messages], params: SamplingParams) -> list[Completion]:
        from transformers import GenerationConfig

        texts = self.render(prompts)
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=params.temperature > 0,
            temperature=params.temperature if params.temperature > 0 else None,
            top_p=params.top_p if params.temperature > 0 else None,
            top_k=None,
            eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        out: list[Completion] = []
        size = self.options.max_batch_size
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            batch = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            torch.manual_seed(params.seed + start)
            generated = self.model.generate(**batch, generation_config=config)
            new_tokens = generated[:, batch["input_ids"].shape[1] :]
            prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
            for row, prompt_len in zip(new_tokens.tolist(), prompt_lengths):
                out.append(self._completion(row, int(prompt_len), params.max_new_tokens))
        return out

    def _completion(self, row: list[int], prompt_len: int, limit: int) -> Completion:
        stop_at = next((i for i, tok in enumerate(row) if tok in self.stop_ids), None)
        kept = row if stop_at is None else row[:stop_at]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        n = len(kept) + (0 if stop_at is None else 1)
        reason = "stop" if stop_at is not None or n < limit else "length"
        return Completion(text=text.strip(), raw_text=text, prompt_tokens=prompt_len, completion_tokens=n, finish_reason=reason)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "chat_template_sha256": chat_template_sha256(self.tokenizer),
        }

    def close(self) -> None:
        del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
