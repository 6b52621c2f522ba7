"""Loading a model to train and saving a checkpoint that loads like any model folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentbench.models import ModelRef


def load_for_training(model: ModelRef) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from agentbench.backends.hf import load_tokenizer

    tokenizer = load_tokenizer(model.path)
    return AutoModelForCausalLM.from_pretrained(model.path, dtype=torch.float32), tokenizer


def save_checkpoint(model: Any, tokenizer: Any, folder: Path, base: ModelRef, method: str) -> ModelRef:
    """Save weights, tokenizer and where they came from; returns a ref to the new folder."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if not (folder / "config.json").exists():
        # transformers writes nothing on a rank other than 0 of a process group; under accelerate
        # launch the other ranks run the same run in a scratch folder and must reload what they trained.
        from safetensors.torch import save_model

        model.config.save_pretrained(folder)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(folder)
        save_model(model, str(folder / "model.safetensors"))
    tokenizer.save_pretrained(folder)
    name = f"{base.name}+{method}"
    meta = {"name": name, "source": f"trained by agentbench method {method} from {base.name}",
            "base_model": base.name, "base_path": base.path, "learning_rate": base.learning_rate}
    (folder / "agentbench_model.json").write_text(json.dumps(meta, indent=2))
    return ModelRef(name, str(folder.resolve()), meta["source"], learning_rate=base.learning_rate)
