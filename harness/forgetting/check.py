"""The forgetting check: IF-Eval instruction-following of the initial and the trained model,
and a paired test of the difference.

Settings follow lm-eval's ``ifeval`` task as the OEL paper runs it: each prompt is one user
turn rendered with the model's chat template, answered greedily (temperature 0, seed 0) up to
the budget's ``forgetting_max_new_tokens`` (lm-eval's default is 1280), and judged by lm-eval's
strict and loose verifiers. The paired test is an exact McNemar test on the per-prompt strict
verdicts; seeded bootstrap intervals over prompts give the uncertainty of every delta. Per-prompt
answers and verdicts go to ``forgetting.jsonl`` in the output folder.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentbench.artifacts import SharedCache
from agentbench.backends import BackendOptions, SamplingParams
from agentbench.budgets import Budget
from agentbench.fileio import atomic_write_text
from agentbench.forgetting.answers import AnswerSet, generate_answers
from agentbench.forgetting.config import ForgettingConfig
from agentbench.forgetting.data import PromptSet, load_prompts
from agentbench.forgetting.verify import Verifier
from agentbench.models import ModelRef
from agentbench.results import (
    FORGETTING_FILE,
    ForgettingPromptRecord,
    ForgettingResult,
    ForgettingScores,
    IFEvalOutcome,
    PairedTest,
)
from agentbench.stats import mcnemar_exact, paired_bootstrap_delta

GENERATION_SEED = 0
"""Greedy decoding does not use it; fixed anyway (and not the run's seed, so that runs with
different seeds share the initial model's answers)."""
METRICS = ("prompt_level_strict", "prompt_level_loose", "inst_level_strict", "inst_level_loose")

Progress = Callable[[str, int, int], None]


def sampling_for(budget: Budget) -> SamplingParams:
    return SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=budget.forgetting_max_new_tokens,
                          seed=GENERATION_SEED)


def discordant(before: list[bool], after: list[bool]) -> dict[str, int]:
    return {"both": sum(b and a for b, a in zip(before, after)),
            "before_only": sum(b and not a for b, a in zip(before, after)),
            "after_only": sum(a and not b for b, a in zip(before, after)),
            "neither": sum(not b and not a for b, a in zip(before, after))}


def paired_test(before: list[IFEvalOutcome], after: list[IFEvalOutcome], seed: int, resamples: int) -> PairedTest:
    """Exact McNemar on prompt-level strict verdicts, plus bootstrap intervals of every delta."""
    strict = discordant([o.prompt_level_strict for o in before], [o.prompt_level_strict for o in after])
    loose = discordant([o.prompt_level_loose for o in before], [o.prompt_level_loose for o in after])
    intervals: dict[str, Any] = {}
    for metric in METRICS:
        if metric.startswith("prompt"):
            b = [float(getattr(o, metric)) for o in before]
            a = [float(getattr(o, metric)) for o in after]
            w = [1.0] * len(before)
        else:
            b = [float(sum(getattr(o, metric))) for o in before]
            a = [float(sum(getattr(o, metric))) for o in after]
            w = [float(len(getattr(o, metric))) for o in before]
        delta, (lo, hi) = paired_bootstrap_delta(b, a, w, seed=seed, n_resamples=resamples)
        intervals[metric] = {"delta": delta, "ci95": [lo, hi]}
    return PairedTest(
        name="exact McNemar on per-prompt strict results (prompt level)",
        statistic=float(min(strict["before_only"], strict["after_only"])),
        p_value=mcnemar_exact(strict["before_only"], strict["after_only"]),
        details={
            "discordant": {"before_only": strict["before_only"], "after_only": strict["after_only"]},
            "concordant": {"both": strict["both"], "neither": strict["neither"]},
            "statistic": "min(before_only, after_only); p = min(1, 2 P(X <= statistic)), "
                         "X ~ Binomial(before_only + after_only, 1/2)",
            "loose": {**loose, "p_value": mcnemar_exact(loose["before_only"], loose["after_only"])},
            "bootstrap": {"method": "percentile bootstrap over prompts (paired: one resample of prompts "
                                    "scores both models; instruction level = followed / instructions "
                                    "of the resampled prompts)",
                          "resamples": resamples, "seed": seed, "level": 0.95, "intervals": intervals},
        },
    )


@dataclass
class ForgettingCheck:
    """Runs the check for one (initial, trained) pair; every model's answers are cached in ``shared``."""

    config: ForgettingConfig
    budget: Budget
    backend: str
    backend_options: BackendOptions
    shared: SharedCache
    seed: int
    """Seed of the bootstrap (the run's seed)."""
    progress: Progress | None = None

    def prompts(self) -> PromptSet:
        return load_prompts(self.config).subset(self.budget.forgetting_prompts)

    def answers(self, model: ModelRef, prompts: PromptSet, label: str) -> AnswerSet:
        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(f"IF-Eval {label} ({model.name})", done, total)

        return generate_answers(model=model, prompts=prompts.prompts, prompts_sha256=prompts.prompts_sha256(),
                                sampling=sampling_for(self.budget), backend=self.backend,
                                options=self.backend_options, batch=self.config.ifeval_batch, shared=self.shared,
                                on_progress=report)

    def run(self, base: ModelRef, trained: ModelRef, out_dir: Path,
            scope: dict[str, Any] | None = None) -> ForgettingResult:
        """Answers of both models (cached), verdicts, the side file in ``out_dir``, and the result."""
        started = time.perf_counter()
        prompts = self.prompts()
        verifier = Verifier.load()
        verifier.check_known(prompts.prompts)
        before_answers = self.answers(base, prompts, "before")
        after_answers = self.answers(trained, prompts, "after")
        errors: list[dict[str, Any]] = []

        def judge(answers: AnswerSet, which: str) -> list[IFEvalOutcome]:
            outcomes = []
            for prompt, answer in zip(prompts.prompts, answers.answers):
                outcome, error = verifier.score(prompt, answer.text)
                if error is not None:
                    errors.append({"key": prompt.key, "model": which, "error": error[:300]})
                outcomes.append(outcome)
            return outcomes

        before, after = judge(before_answers, "before"), judge(after_answers, "after")
        records = [ForgettingPromptRecord(key=p.key, instruction_id_list=list(p.instruction_id_list),
                                          before=b, after=a)
                   for p, b, a in zip(prompts.prompts, before, after)]
        side = out_dir / FORGETTING_FILE
        atomic_write_text(side, "".join(r.model_dump_json() + "\n" for r in records))
        scores_before, scores_after = verifier.aggregate(before), verifier.aggregate(after)
        delta = ForgettingScores(**{m: getattr(scores_after, m) - getattr(scores_before, m) for m in METRICS})
        sampling = sampling_for(self.budget)
        return ForgettingResult(
            benchmark="ifeval", source=prompts.source, dataset_sha256=prompts.file_sha256, n=len(prompts.prompts),
            before=scores_before, after=scores_after, delta=delta,
            test=paired_test(before, after, self.seed, self.config.ifeval_bootstrap_resamples),
            extra={
                "side_file": FORGETTING_FILE,
                "side_file_sha256": hashlib.sha256(side.read_bytes()).hexdigest(),
                "data": prompts.describe(),
                "generation": {"messages": "one user turn with the prompt, no system message (the chat "
                                           "template's own default applies)",
                               "chat_template": True, "temperature": sampling.temperature,
                               "top_p": sampling.top_p, "do_sample": False,
                               "max_new_tokens": sampling.max_new_tokens, "seed": sampling.seed,
                               "stop": "the model's end-of-turn tokens", "backend": self.backend,
                               "backend_options": self.backend_options.model_dump(mode="json"),
                               "batch": self.config.ifeval_batch},
                "models": {"before": {"name": base.name, "path": base.path, "sha256": base.weights_sha256(),
                                      **before_answers.summary()},
                           "after": {"name": trained.name, "path": trained.path,
                                     "sha256": trained.weights_sha256(), **after_answers.summary()}},
                **verifier.describe(),
                "tokenizer_data": dict(verifier.tokenizer_data),
                "verifier_errors": errors,
                "scope": scope or {},
                "wall_time_s": round(time.perf_counter() - started, 2),
            },
        )
