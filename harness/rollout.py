"""The rollout engine: many episodes at once, one batched model call per turn.

Episodes run in *waves* of ``wave_size``: every live episode of a wave contributes one prompt
to each batched ``generate`` call. A wave's batch composition depends only on the job list,
so a run resumed after a crash (which reruns unfinished waves) reproduces the uninterrupted
run exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from agentbench.backends import Backend, SamplingParams
from agentbench.env import Env, Task
from agentbench.errors import ConfigError, EnvServerError
from agentbench.prompting import Exchange, PromptBuilder
from agentbench.trajectory import EpisodeRecord, Termination, TokenCount, Turn, TurnTokens, trajectory_sha256


class RolloutLimits(BaseModel):
    """When an episode is cut short."""

    model_config = ConfigDict(frozen=True)

    max_turns: int = Field(20, ge=1, description="model moves per episode")
    max_prompt_tokens: int = Field(4096, ge=16, description="a longer prompt ends the episode (context_limit)")
    max_consecutive_invalid: int = Field(3, ge=1, description="invalid moves in a row that end an episode")
    env_workers: int = Field(1, ge=1, description="env steps of one wave run concurrently in this many threads "
                                                   "(slow envs: a JVM, a browser); results do not depend on it")

    def check_concurrency(self, env: object, name: str) -> None:
        """Refuse ``env_workers`` > 1 for an env (class or instance) whose steps cannot run at once."""
        if self.env_workers > 1 and not getattr(env, "concurrent_steps", True):
            raise ConfigError(f"env {name}'s steps cannot run concurrently (see its concurrent_steps): "
                              "leave limits.env_workers at 1")


@dataclass(frozen=True)
class EpisodeJob:
    task: Task
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.task.split, self.task.id, self.seed)


@dataclass
class _Live:
    job: EpisodeJob
    env: Env
    observation: str
    history: list[Exchange] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    reward: float = 0.0
    progress: float = 0.0
    invalid_in_row: int = 0
    success: bool = False
    extra: dict = field(default_factory=dict)
    """The env's ``StepInfo.extra`` of every step, merged (later steps win): ``EpisodeRecord.extra``."""


class RolloutEngine:
    def __init__(
        self,
        backend: Backend,
        make_env: Callable[[], Env],
        prompts: PromptBuilder,
        sampling: SamplingParams,
        limits: RolloutLimits,
        wave_size: int = 16,
        env_name: str | None = None,
        keep_tokens: bool = False,
    ):
        """``keep_tokens``: record each move's prompt and sampled token ids and their sampling
        log-probs on its ``Turn.tokens`` (online training; needs a backend with token ids)."""
        self.backend = backend
        self.make_env = make_env
        self.prompts = prompts
        self.sampling = sampling
        self.limits = limits
        self.wave_size = wave_size
        self._pool: list[Env] = []
        self.env_name = env_name
        self.model_calls = 0
        self.keep_tokens = keep_tokens
        if keep_tokens:
            self.sampling = sampling.model_copy(update={"logprobs": True})

    def waves(self, jobs: Sequence[EpisodeJob]) -> list[list[EpisodeJob]]:
        return [list(jobs[i : i + self.wave_size]) for i in range(0, len(jobs), self.wave_size)]

    def run(
        self,
        jobs: Sequence[EpisodeJob],
        skip: Iterable[tuple[str, str, int]] = (),
        on_episode: Callable[[EpisodeRecord], None] | None = None,
    ) -> list[EpisodeRecord]:
        """Run every job whose wave is not entirely in ``skip``; call ``on_episode`` as each ends."""
        done = set(skip)
        records: list[EpisodeRecord] = []
        try:
            for wave_index, wave in enumerate(self.waves(jobs)):
                if all(job.key in done for job in wave):
                    continue
                for record in self._run_wave(wave_index, wave):
                    records.append(record)
                    if on_episode is not None:
                        on_episode(record)
        finally:
            for env in self._pool:
                env.close()
            self._pool.clear()
        return records

    def _envs(self, n: int) -> list[Env]:
        while len(self._pool) < n:
            self._pool.append(self.make_env())
        return self._pool[:n]

    def _run_wave(self, wave_index: int, wave: list[EpisodeJob]):
        live: list[_Live] = []
        for job, env in zip(wave, self._envs(len(wave))):
            try:
                live.append(_Live(job, env, env.reset(job.task, seed=job.seed)))
            except EnvServerError:
                raise
            except Exception as exc:  # a task that cannot even start is counted, not fatal
                yield self._record(_Live(job, env, ""), Termination.env_error, error=repr(exc))
        if live:
            self.limits.check_concurrency(live[0].env, self.env_name or type(live[0].env).name)
        turn = 0
        while live:
            messages = [self.prompts.messages(ep.history, ep.observation) for ep in live]
            lengths = self.backend.prompt_tokens(messages)
            fits = [n + self.sampling.max_new_tokens <= self.limits.max_prompt_tokens for n in lengths]
            for ep, ok in zip(live, fits):
                if not ok:
                    yield self._record(ep, Termination.context_limit)
            live = [ep for ep, ok in zip(live, fits) if ok]
            messages = [m for m, ok in zip(messages, fits) if ok]
            if not live:
                break
            seed = _derive_seed(self.sampling.seed, wave_index, turn)
            completions = self.backend.generate(messages, self.sampling.model_copy(update={"seed": seed}))
            self.model_calls += len(completions)
            still: list[_Live] = []
            if self.limits.env_workers > 1 and len(live) > 1:
                with ThreadPoolExecutor(max_workers=self.limits.env_workers) as pool:
                    outcomes = list(pool.map(self._advance, live, completions))
            else:
                outcomes = [self._advance(ep, c) for ep, c in zip(live, completions)]
            for ep, ended in zip(live, outcomes):
                if ended is None:
                    still.append(ep)
                else:
                    yield self._record(ep, *ended)
            live = still
            turn += 1

    def _advance(self, ep: _Live, completion) -> tuple[Termination] | tuple[Termination, str] | None:
        tokens = TurnTokens(prompt_ids=list(completion.prompt_ids), completion_ids=list(completion.token_ids),
                            logprobs=list(completion.logprobs) if completion.logprobs is not None else None) \
            if self.keep_tokens else None
        action = ep.env.parse_action(completion.text)
        shown = ep.observation
        if action is None:
            valid, reward, done = False, 0.0, False
            observation = (
                "Your reply had no parsable action line. End your reply with a line "
                "'Action: <action>'.\n" + shown
            )
        else:
            try:
                step = ep.env.step(action)
            except EnvServerError:
                raise
            except Exception as exc:
                ep.turns.append(Turn(observation=shown, response=completion.text, action=action, valid=False,
                                     prompt_tokens=completion.prompt_tokens,
                                     completion_tokens=completion.completion_tokens, tokens=tokens))
                return (Termination.env_error, repr(exc))
            valid, reward, done, observation = step.info.valid, step.reward, step.done, step.observation
            ep.progress = max(ep.progress, step.info.progress)
            ep.success = ep.success or step.info.success
            ep.extra.update(step.info.extra)
        ep.reward += reward
        ep.turns.append(Turn(observation=shown, response=completion.text, action=action, valid=valid,
                             reward=reward, done=done, prompt_tokens=completion.prompt_tokens,
                             completion_tokens=completion.completion_tokens, tokens=tokens))
        ep.history.append(Exchange(shown, completion.text))
        ep.observation = observation
        ep.invalid_in_row = 0 if valid else ep.invalid_in_row + 1
        if done:
            return (Termination.success if ep.success else Termination.failure,)
        if ep.invalid_in_row >= self.limits.max_consecutive_invalid:
            return (Termination.invalid_action,)
        if len(ep.turns) >= self.limits.max_turns:
            return (Termination.turn_limit,)
        return None

    def _record(self, ep: _Live, termination: Termination, error: str | None = None) -> EpisodeRecord:
        turns = ep.turns
        return EpisodeRecord(
            env=self.env_name or type(ep.env).name,
            split=ep.job.task.split,
            task_id=ep.job.task.id,
            seed=ep.job.seed,
            success=ep.success,
            reward=ep.reward,
            progress=1.0 if ep.success else ep.progress,
            turns=len(turns),
            invalid_actions=sum(not t.valid for t in turns),
            termination=termination,
            tokens=TokenCount(prompt=sum(t.prompt_tokens for t in turns),
                              completion=sum(t.completion_tokens for t in turns)),
            trajectory_sha256=trajectory_sha256(turns),
            trajectory=turns,
            final_observation=ep.observation,
            error=error,
            extra=ep.extra,
        )


def _derive_seed(seed: int, wave: int, turn: int) -> int:
    digest = hashlib.sha256(f"{seed}:{wave}:{turn}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
