"""From command-line names and ``--set key=value`` pairs to a fully resolved run spec.

Every component (env, method, protocol) declares its parameters as a pydantic model; so do the
budget, the prompt, the rollout limits, generation and the backend. ``--set k=v`` goes to the
one section that declares ``k`` (write ``section.k`` where two do); unknown keys are errors
naming the closest known ones. The resolved spec is recorded, so a run can be replayed by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model

from agentbench import registry
from agentbench.backends import BackendOptions, SamplingParams
from agentbench.budgets import Budget, get_budget
from agentbench.env import make_config, sha256_json
from agentbench.errors import ConfigError, UnknownNameError
from agentbench.forgetting.config import ForgettingConfig
from agentbench.models import ModelRef, resolve_model
from agentbench.prompting import PromptConfig
from agentbench.registry import Resolved
from agentbench.rollout import RolloutLimits


def parse_value(text: str) -> Any:
    """JSON where it parses (numbers, booleans, null, lists), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(pairs: list[str], sections: dict[str, type[BaseModel]]) -> dict[str, dict[str, Any]]:
    routed: dict[str, dict[str, Any]] = {name: {} for name in sections}
    all_keys = {k for cls in sections.values() for k in cls.model_fields}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip()
        section, _, field = key.rpartition(".")
        if section:
            if section not in sections:
                raise UnknownNameError("--set section", section, sections)
            if field not in sections[section].model_fields:
                raise UnknownNameError(f"option of {section}", field, sections[section].model_fields)
            owners = [section]
        else:
            owners = [name for name, cls in sections.items() if key in cls.model_fields]
            if not owners:
                raise UnknownNameError("option", key, all_keys)
            if len(owners) > 1:
                raise ConfigError(f"option {key!r} is ambiguous: write one of "
                                  + ", ".join(f"{o}.{key}" for o in owners))
            field = key
        routed[owners[0]][field] = parse_value(raw)
    return routed


@dataclass
class RunSpec:
    """A run, fully resolved: what runs, on what, under which budget and settings."""

    method: Resolved[Any]
    method_config: BaseModel
    env: Resolved[Any]
    env_config: BaseModel
    protocol: Resolved[Any]
    protocol_config: BaseModel
    model_name: str
    backend: str
    backend_options: BackendOptions
    budget: Budget
    budget_overridden: bool
    prompt: PromptConfig
    limits: RolloutLimits
    sampling: SamplingParams
    seed: int
    forgetting: ForgettingConfig = field(default_factory=ForgettingConfig)
    """Where the IF-Eval prompts come from and how answers are batched. Not part of ``record()``
    (run ids stay as they were); the forgetting result records all of it."""

    def model(self) -> ModelRef:
        return resolve_model(self.model_name)

    def record(self) -> dict[str, Any]:
        """Everything that defines the run (hashed into its id; compared on --resume)."""
        return {
            "method": self.method.full_name, "method_config": self.method_config.model_dump(mode="json"),
            "env": self.env.full_name, "env_config": self.env_config.model_dump(mode="json"),
            "protocol": self.protocol.full_name, "protocol_config": self.protocol_config.model_dump(mode="json"),
            "model": self.model_name, "backend": self.backend,
            "backend_options": self.backend_options.model_dump(mode="json"),
            "budget": self.budget.model_dump(mode="json"), "prompt": self.prompt.model_dump(mode="json"),
            "limits": self.limits.model_dump(mode="json"), "generation": self.sampling.model_dump(mode="json"),
            "seed": self.seed,
        }

    def sha256(self) -> str:
        return sha256_json(self.record())

    def default_run_id(self) -> str:
        model = re.sub(r"[^A-Za-z0-9_.+-]+", "_", Path(self.model_name).name or self.model_name)
        env = self.env.full_name.replace(":", "_")
        return (f"{self.method.full_name}__{env}__{self.protocol.name}__{self.budget.name}__{model}"
                f"__s{self.seed}__{self.sha256()[:8]}")


def method_union(names: list[str]) -> type[BaseModel]:
    """A config model with every option of the given methods (to validate ``--set`` once for
    a multi-method command; each method then takes the options it declares)."""
    fields: dict[str, Any] = {}
    for name in names:
        for key in registry.methods.get(name).Config.model_fields:
            fields[key] = (Any, None)
    return create_model("MethodOptions", **fields)


def resolve_spec(
    *, method: str, env: str, protocol: str, model: str, backend: str, budget: str, seed: int, sets: list[str],
    protocol_obj: Any = None, group: list[str] | None = None,
) -> RunSpec:
    """Resolve one run. ``group``: the methods of a multi-method command; options of the group's
    other methods are then skipped rather than refused."""
    method_r = registry.methods.resolve(method)
    env_r = registry.envs.resolve(env)
    protocol_r = Resolved(protocol_obj, protocol_obj.name, None, "agentbench") if protocol_obj is not None \
        else registry.protocols.resolve(protocol)
    if backend not in registry.backends.names():
        raise UnknownNameError("backend", backend, registry.backends.names())
    env_cls, method_cls = env_r.obj, method_r.obj
    sections: dict[str, type[BaseModel]] = {
        "method": method_union(group) if group else method_cls.Config, "env": env_cls.Config, "protocol": protocol_r.obj.Config, "budget": Budget,
        "prompt": PromptConfig, "limits": RolloutLimits, "generation": SamplingParams, "backend": BackendOptions,
        "forgetting": ForgettingConfig,
    }
    routed = parse_sets(sets, sections)
    routed["method"] = {k: v for k, v in routed["method"].items() if k in method_cls.Config.model_fields}
    routed["budget"].pop("name", None)
    budget_cfg = get_budget(budget, routed["budget"])
    env_params = dict(routed["env"])
    if env_r.variant is not None:
        env_params.setdefault("variant", env_r.variant)
    env_config = make_config(env_cls.Config, env_params, f"env {env}")
    # A remote env's default turn limit is its server's; max_turns_for asks (BaseEnv's returns the ClassVar).
    max_turns_for = getattr(env_cls, "max_turns_for", None)
    default_turns = max_turns_for(env_config) if max_turns_for is not None else env_cls.default_max_turns
    limits = make_config(RolloutLimits, {"max_turns": default_turns, **routed["limits"]}, "limits")
    limits.check_concurrency(env_cls, env)  # before any work, not at the first rollout
    sampling = make_config(SamplingParams, {"max_new_tokens": budget_cfg.max_new_tokens, "seed": seed,
                                            **routed["generation"]}, "generation")
    return RunSpec(
        method=method_r, method_config=make_config(method_cls.Config, routed["method"], f"method {method}"),
        env=env_r, env_config=env_config,
        protocol=protocol_r,
        # a protocol object handed in (agentbench eval) brings its own, recorded config
        protocol_config=protocol_obj.config if protocol_obj is not None else make_config(
            protocol_r.obj.Config, routed["protocol"], f"protocol {protocol_r.name}"),
        model_name=model, backend=backend,
        backend_options=make_config(BackendOptions, routed["backend"], "backend"),
        budget=budget_cfg, budget_overridden=bool(routed["budget"]),
        prompt=make_config(PromptConfig, routed["prompt"], "prompt"), limits=limits, sampling=sampling,
        seed=seed, forgetting=make_config(ForgettingConfig, routed["forgetting"], "forgetting"),
    )
