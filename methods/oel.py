"""``oel``: Online Experiential Learning (Ye, Dong et al., Microsoft), reward-free.

Rounds of

1. *collect*: the current model plays episodes on train tasks (a fresh slice of the train
   split each round) at the sampling temperature;
2. *extract*: a model (the round's policy by default) reads those trajectories, a few per call,
   and writes transferable knowledge as bullet points into an accumulated experience text,
   bounded in tokens (the oldest items are dropped first); the extraction prompt is the config's
   ``extraction_prompt``, so the result records it. Only the env's text is shown, never a reward;
3. *consolidate* by on-policy context distillation: the student (no experience in its prompt)
   samples one reply from prefixes (states) of the collected episodes with its current weights;
   the frozen teacher, the round's starting model **with the experience in its system prompt**,
   scores the same reply tokens (top-k, 256 by default); the student minimises the token-level
   reverse KL ``KL(student || teacher)`` over its own tokens on the teacher's top-k support
   (:class:`~agentbench.training.losses.ReverseKLLoss`). No environment access.

The consolidated model (no experience in its prompt) is the next round's policy and, after the
last round, the result. Each round's model is evaluated (``ctx.evaluate``; round 0 is the initial
model) into ``scaling[]`` on the axis ``iteration``; per round the counters hold the evaluation's
mean response tokens, the experience's tokens and the collection's successes, and
``experience/round-N.txt`` the experience text. The forgetting check (IF-Eval) runs after
training, as for every method, when the budget asks for it.

Defaults by budget (``None`` fields), ``paper`` after the OEL code's settings:

========  ======  ===================  ===========  ============  ========  ==================
budget    rounds  consolidation steps  prefixes/st  experience    lr        reply tokens
========  ======  ===================  ===========  ============  ========  ==================
smoke     2       4                    8            256 tokens    budget's  budget's
small     2       10                   16           1024 tokens   budget's  budget's
paper     2 / 3   50                   64           8192 tokens   1e-6      1024
========  ======  ===================  ===========  ============  ========  ==================

``paper`` rounds: 3 on Sokoban, 2 elsewhere (OEL: Frozen Lake 2). Temperature 0.7 throughout.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import Field, field_validator

from agentbench.backends import Backend, Messages, SamplingParams, ScoreRequest, TokenScores
from agentbench.backends.hf import HFBackend, load_tokenizer
from agentbench.fileio import atomic_write_text
from agentbench.method import Compute, StageCompute, TrainContext, TrainOutput
from agentbench.methods.agentevol import env_steps_of, explore, log, total_compute
from agentbench.models import ModelRef, resolve_model
from agentbench.prompting import Exchange, PromptBuilder
from agentbench.results import ScalingPoint
from agentbench.training.batch import TokenSample
from agentbench.training.checkpoints import load_for_training, save_checkpoint
from agentbench.training.losses import ReverseKLLoss
from agentbench.training.sft import shuffled_stream
from agentbench.training.trainer import OptimConfig, PolicyTrainer
from agentbench.trajectory import EpisodeRecord

EXTRACTION_PROMPT = (
    "You are reviewing games that an agent played, to help it play better next time.\n\n"
    "The agent's instructions:\n{instructions}\n\n"
    "What the agent has learned so far:\n{experience}\n\n"
    "New games it played:\n{trajectories}\n\n"
    "Write the new, transferable lessons these games teach: rules of the game the agent did not know, "
    "strategies that worked, mistakes to avoid. One short bullet point per lesson, each line starting "
    "with '- '. Do not repeat what the agent has already learned and do not describe one particular board."
)
EXPERIENCE_HEADER = "Experience from earlier games (use it to play better):"

BUDGET_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {"rounds": 2, "consolidation_steps": 4, "prefixes_per_step": 8, "experience_tokens": 256},
    "small": {"rounds": 2, "consolidation_steps": 10, "prefixes_per_step": 16, "experience_tokens": 1024},
    "paper": {"rounds": 2, "consolidation_steps": 50, "prefixes_per_step": 64, "experience_tokens": 8192,
              "learning_rate": 1e-6, "max_new_tokens": 1024},
}


class OELConfig(OptimConfig):
    rounds: int | None = Field(None, ge=1, description="collect-extract-consolidate rounds (None: smoke/small 2; "
                                                       "paper 3 on Sokoban, else 2)")
    collect_episodes: int | None = Field(None, ge=1, description="episodes played per round (None: "
                                                                 "budget.train_tasks)")
    rollout_temperature: float = Field(0.7, ge=0, description="sampling temperature of collection, extraction and the "
                                                      "student's replies (OEL: 0.7)")
    extractor: str | None = Field(None, description="model that writes the experience (None: the round's policy)")
    extraction_prompt: str = Field(EXTRACTION_PROMPT, description="template with {instructions}, {experience} "
                                                                  "and {trajectories}")
    episodes_per_extraction: int = Field(4, ge=1, description="trajectories shown per extraction call")
    extraction_max_new_tokens: int = Field(256, ge=8, description="tokens per extraction call")
    episode_max_chars: int = Field(3000, ge=200, description="a longer rendered trajectory loses its middle")
    experience_tokens: int | None = Field(None, ge=16, description="bound of the experience text, in the "
                                                                   "policy's tokens (None: smoke 256, small "
                                                                   "1024, paper 8192)")
    consolidation_steps: int | None = Field(None, ge=1, description="optimizer steps per round (None: smoke 4, "
                                                                    "small 10, paper 50)")
    prefixes_per_step: int | None = Field(None, ge=1, description="prefixes per consolidation step (None: smoke 8, "
                                                           "small 16, paper 64)")
    reply_max_new_tokens: int | None = Field(None, ge=1, description="student reply tokens in consolidation (None: "
                                                               "paper 1024, else the budget's max_new_tokens)")
    top_k: int = Field(256, ge=1, description="teacher's top-k support of the reverse KL")
    evaluate_rounds: bool = Field(True, description="evaluate every round's model (the scaling curve)")

    @field_validator("extraction_prompt")
    @classmethod
    def _has_fields(cls, value: str) -> str:
        try:
            value.format(instructions="", experience="", trajectories="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"extraction_prompt must format with {{instructions}}, {{experience}}, "
                             f"{{trajectories}} only: {exc}") from exc
        if "{experience}" not in value or "{trajectories}" not in value:
            raise ValueError("extraction_prompt must contain {experience} and {trajectories}")
        return value


@dataclass(frozen=True)
class Settings:
    rounds: int
    collect_episodes: int
    experience_tokens: int
    consolidation_steps: int
    prefixes_per_step: int
    max_new_tokens: int
    learning_rate: float


def resolve(ctx: TrainContext, cfg: OELConfig) -> Settings:
    d = BUDGET_DEFAULTS.get(ctx.budget.name, BUDGET_DEFAULTS["small"])
    rounds = cfg.rounds or (3 if ctx.budget.name == "paper" and "sokoban" in ctx.env_name else d["rounds"])
    lr = (cfg.learning_rate or d.get("learning_rate") or ctx.budget.learning_rate
          or ctx.base_model.learning_rate)
    return Settings(rounds=rounds, collect_episodes=cfg.collect_episodes or ctx.budget.train_tasks,
                    experience_tokens=cfg.experience_tokens or d["experience_tokens"],
                    consolidation_steps=cfg.consolidation_steps or d["consolidation_steps"],
                    prefixes_per_step=cfg.prefixes_per_step or d["prefixes_per_step"],
                    max_new_tokens=cfg.reply_max_new_tokens or d.get("max_new_tokens") or ctx.budget.max_new_tokens,
                    learning_rate=lr)


# -- experience ---------------------------------------------------------------------------

@dataclass
class Experience:
    """Accumulated knowledge items whose joined text stays within ``max_tokens`` (counted by
    ``count``): new items go last, the oldest are dropped when the bound is passed, and an item
    longer than the bound on its own is cut to it."""

    max_tokens: int
    count: Callable[[str], int]
    truncate: Callable[[str, int], str]
    items: list[str] = field(default_factory=list)
    dropped: int = 0

    @property
    def text(self) -> str:
        return "\n".join(self.items)

    @property
    def tokens(self) -> int:
        return self.count(self.text) if self.items else 0

    def add(self, new: Sequence[str]) -> int:
        """Add the items not already present; returns how many were added."""
        added = 0
        for item in new:
            item = item.strip()
            if not item or item in self.items:
                continue
            if self.count(item) > self.max_tokens:
                item = self.truncate(item, self.max_tokens)
            self.items.append(item)
            added += 1
            while self.items and self.count(self.text) > self.max_tokens:
                self.items.pop(0)
                self.dropped += 1
        return added


def tokenizer_bounds(tokenizer) -> tuple[Callable[[str], int], Callable[[str, int], str]]:
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(text: str, n: int) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n]
        while ids:
            cut = tokenizer.decode(ids, skip_special_tokens=True)
            if count(cut) <= n:
                return cut
            ids = ids[:-1]
        return ""

    return count, truncate


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(.+?)\s*$")


def parse_items(text: str) -> list[str]:
    """Bullet lines of an extraction as items (``- ...``); a reply without bullets is one item."""
    bullets = [m.group(1) for line in text.splitlines() if (m := _BULLET.match(line))]
    if bullets:
        return [f"- {b}" for b in bullets]
    text = " ".join(text.split())
    return [f"- {text}"] if text else []


def render_episode(record: EpisodeRecord, max_chars: int) -> str:
    """The episode as the env wrote it and the agent replied: no reward, no success flag."""
    parts = [f"Step {i}.\nEnvironment: {t.observation}\nAgent: {t.response}"
             for i, t in enumerate(record.trajectory, 1)]
    parts.append(f"Environment (end): {record.final_observation}")
    text = "\n".join(parts)
    if len(text) > max_chars:
        head = max_chars // 3
        text = text[:head] + "\n[...]\n" + text[len(text) - (max_chars - head) :]
    return text


def extraction_messages(template: str, instructions: str, experience: str,
                        episodes: Sequence[EpisodeRecord], max_chars: int) -> Messages:
    games = "\n\n".join(f"Game {i}:\n{render_episode(r, max_chars)}" for i, r in enumerate(episodes, 1))
    return [{"role": "user", "content": template.format(instructions=instructions,
                                                        experience=experience or "(nothing yet)",
                                                        trajectories=games)}]


# -- prompts of the student and the teacher -----------------------------------------------

@dataclass(frozen=True)
class State:
    """A prefix of a collected episode: what the policy saw before one of its moves."""

    history: tuple[Exchange, ...]
    observation: str


def episode_states(records: Sequence[EpisodeRecord]) -> list[State]:
    states: list[State] = []
    for r in records:
        history: list[Exchange] = []
        for t in r.trajectory:
            states.append(State(tuple(history), t.observation))
            history.append(Exchange(t.observation, t.response))
    return states


def student_messages(prompts: PromptBuilder, state: State) -> Messages:
    """The policy's own prompt, as at evaluation: no experience."""
    return prompts.messages(list(state.history), state.observation)


def teacher_messages(prompts: PromptBuilder, state: State, experience: str) -> Messages:
    """The same prompt with the experience appended to the system prompt."""
    messages = prompts.messages(list(state.history), state.observation)
    system = dict(messages[0])
    system["content"] = f"{system['content']}\n\n{EXPERIENCE_HEADER}\n{experience}"
    return [system, *messages[1:]]


def distillation_sample(prompt_ids: Sequence[int], completion_ids: Sequence[int],
                        teacher: TokenScores) -> TokenSample:
    """The student's prompt and reply, loss on the reply, each reply token carrying the
    teacher's top-k at that position (from a teacher prompt that may differ from the student's)."""
    sample = TokenSample.from_completion(prompt_ids, completion_ids, kind="distill")
    pad: list[list] = [[] for _ in prompt_ids]
    sample.teacher_ids = pad + [list(r) for r in teacher.top_ids]
    sample.teacher_logprobs = [[] for _ in prompt_ids] + [list(r) for r in teacher.top_logprobs]
    return sample


def distillation_batch(student: Backend, teacher: Backend, prompts: PromptBuilder, states: Sequence[State],
                       experience: str, params: SamplingParams, top_k: int) -> list[TokenSample]:
    """The student replies to each state without the experience; the teacher, with it, scores
    the same reply tokens."""
    completions = student.generate([student_messages(prompts, s) for s in states], params.model_copy(
        update={"n": 1, "logprobs": True}))
    kept = [(s, c) for s, c in zip(states, completions) if c.token_ids]
    teacher_prompts = teacher.encode([teacher_messages(prompts, s, experience) for s, _ in kept])
    scores = teacher.score([ScoreRequest(p, c.token_ids) for p, (_, c) in zip(teacher_prompts, kept)], top_k=top_k)
    return [distillation_sample(c.prompt_ids, c.token_ids, sc) for (_, c), sc in zip(kept, scores)]


class OnlineExperientialLearning:
    name: ClassVar[str] = "oel"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("OEL: rounds of collect, extract experience, consolidate it by on-policy "
                                  "context distillation (reverse KL to the experience-prompted model)")
    Config = OELConfig
    uses_expert: ClassVar[bool] = False

    def __init__(self, config: OELConfig | None = None):
        self.config = config or OELConfig()

    # -- extract ----------------------------------------------------------------------
    def extract(self, ctx: TrainContext, extractor: Backend, experience: Experience, records: Sequence[EpisodeRecord],
                instructions: str, seed: int) -> tuple[int, int]:
        """Fold ``records`` into ``experience``, a few per call; returns (calls, items added)."""
        cfg = self.config
        per = cfg.episodes_per_extraction
        calls = added = 0
        params = SamplingParams(temperature=cfg.rollout_temperature, max_new_tokens=cfg.extraction_max_new_tokens)
        for i in range(0, len(records), per):
            ask = extraction_messages(cfg.extraction_prompt, instructions, experience.text, records[i : i + per],
                                      cfg.episode_max_chars)
            reply = extractor.generate([ask], params.model_copy(update={"seed": seed + i}))[0]
            calls += 1
            added += experience.add(parse_items(reply.text))
            ctx.on_progress("extract", min(i + per, len(records)), len(records))
        return calls, added

    # -- consolidate ------------------------------------------------------------------
    def consolidate(self, ctx: TrainContext, start: ModelRef, prompts: PromptBuilder, states: Sequence[State],
                    experience: str, s: Settings, round_: int):
        cfg = self.config
        model, tokenizer = load_for_training(start)
        teacher = ctx.open_policy(start)  # frozen: the round's starting model
        trainer = PolicyTrainer(model, tokenizer, cfg, learning_rate=s.learning_rate,
                                total_steps=s.consolidation_steps, seed=ctx.seed + round_,
                                micro_batch=ctx.budget.batch_size, aggregation="token-mean")
        student = HFBackend.sharing(trainer.model, tokenizer, start, ctx.backend_options)
        order = shuffled_stream(len(states), ctx.seed * 7919 + round_)
        loss = ReverseKLLoss()
        stage = StageCompute(name=f"round-{round_}/consolidate")
        started = time.perf_counter()
        calls = 0
        try:
            for step in range(1, s.consolidation_steps + 1):
                batch = [states[next(order)] for _ in range(min(s.prefixes_per_step, len(states)))]
                params = SamplingParams(temperature=cfg.rollout_temperature, max_new_tokens=s.max_new_tokens,
                                        seed=ctx.seed * 100_003 + round_ * 1000 + step)
                samples = distillation_batch(student, teacher, prompts, batch, experience, params, cfg.top_k)
                calls += len(batch)
                samples = [x.truncated(ctx.budget.max_seq_len) for x in samples]
                samples = [x for x in samples if x.loss_tokens > 0]
                if not samples:
                    continue
                m = trainer.step(samples, loss)
                stage.examples += m.sequences
                stage.tokens += m.tokens
                stage.loss_tokens += m.loss_tokens
                stage.optimizer_steps += 1
                log(ctx, {"stage": f"round {round_}: consolidate", "step": step, "loss": m.loss,
                          "reverse_kl": m.extra.get("reverse_kl"), "grad_norm": m.grad_norm,
                          "learning_rate": m.learning_rate,
                          "mean_reply_tokens": m.loss_tokens / max(m.sequences, 1)})
                ctx.on_progress(f"round {round_}: consolidate", step, s.consolidation_steps)
        finally:
            teacher.close()
        stage.wall_time_s = time.perf_counter() - started
        return trainer.merged(), tokenizer, stage, calls

    # -- the loop ---------------------------------------------------------------------
    def train(self, ctx: TrainContext) -> TrainOutput:
        started = time.perf_counter()
        cfg = self.config
        s = resolve(ctx, cfg)
        log(ctx, {"stage": "settings", **s.__dict__, "extraction_prompt": cfg.extraction_prompt})
        prompts = ctx.prompts()
        env = ctx.make_env()
        try:
            train_split = list(env.tasks("train"))
        finally:
            env.close()
        count, truncate = tokenizer_bounds(load_tokenizer(ctx.base_model.path))
        experience = Experience(s.experience_tokens, count, truncate)
        folder = ctx.workdir / "experience"
        folder.mkdir(parents=True, exist_ok=True)
        stages: list[StageCompute] = []
        env_steps = model_calls = 0
        counters: dict[str, int] = {"rounds": s.rounds, "experience_token_bound": s.experience_tokens,
                                    "consolidation_steps": s.consolidation_steps}
        points: list[ScalingPoint] = []

        def so_far() -> Compute:
            return total_compute(stages, started=started, env_steps=env_steps, model_calls=model_calls,
                                 counters=counters)

        def evaluate(r: int, model: ModelRef) -> None:
            result = ctx.evaluate(model, "test", f"round-{r}")
            turns = result.mean_turns * result.success_rate.n
            counters[f"round_{r}_mean_response_tokens"] = round(result.tokens.completion / max(turns, 1))
            counters[f"round_{r}_experience_tokens"] = experience.tokens
            points.append(ScalingPoint(axis="iteration", value=r, method=self.name, env=ctx.env_name, split="test",
                                       success_rate=result.success_rate, train=so_far()))
            log(ctx, {"stage": f"round {r}", "pass_rate": result.success_rate.value,
                      "mean_response_tokens": result.tokens.completion / max(turns, 1),
                      "experience_tokens": experience.tokens})

        policy = ctx.base_model
        if cfg.evaluate_rounds:
            evaluate(0, policy)
        n = s.collect_episodes
        for r in range(1, s.rounds + 1):
            t0 = time.perf_counter()
            tasks = [train_split[(i + (r - 1) * n) % len(train_split)] for i in range(n)]
            records, calls = explore(ctx, policy, tasks, 1, cfg.rollout_temperature, seed=ctx.seed * 1000 + r,
                                     stage=f"round {r}: collect")
            env_steps += env_steps_of(records)
            model_calls += calls
            counters[f"round_{r}_collected"] = len(records)
            counters[f"round_{r}_collect_successes"] = sum(x.success for x in records)
            counters[f"round_{r}_collect_response_tokens"] = round(
                sum(x.tokens.completion for x in records) / max(sum(x.turns for x in records), 1))
            stages.append(StageCompute(name=f"round-{r}/collect", wall_time_s=time.perf_counter() - t0))

            t0 = time.perf_counter()
            extractor = ctx.open_policy(resolve_model(cfg.extractor) if cfg.extractor else policy)
            try:
                calls, added = self.extract(ctx, extractor, experience, records, prompts.instructions,
                                            seed=ctx.seed * 1000 + r)
            finally:
                extractor.close()
            model_calls += calls
            counters[f"round_{r}_experience_items_added"] = added
            counters["experience_items_dropped"] = experience.dropped
            atomic_write_text(folder / f"round-{r}.txt", experience.text)
            stages.append(StageCompute(name=f"round-{r}/extract", wall_time_s=time.perf_counter() - t0))

            states = episode_states(records)
            counters[f"round_{r}_prefixes"] = len(states)
            if not states:  # nothing was played (every episode failed to start): nothing to consolidate
                log(ctx, {"stage": f"round {r}: consolidate", "skipped": "no collected states"})
                continue
            model, tokenizer, stage, calls = self.consolidate(ctx, policy, prompts, states, experience.text, s, r)
            model_calls += calls
            stages.append(stage)
            policy = save_checkpoint(model, tokenizer, ctx.workdir / f"round-{r}" / "checkpoint", ctx.base_model,
                                     self.name)
            del model
            if r > 1:  # the previous round's model has taught this round: not needed again
                shutil.rmtree(ctx.workdir / f"round-{r - 1}" / "checkpoint", ignore_errors=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if cfg.evaluate_rounds:
                evaluate(r, policy)
            else:
                counters[f"round_{r}_experience_tokens"] = experience.tokens
        atomic_write_text(folder / "final.txt", experience.text)
        atomic_write_text(ctx.workdir / "experience.json", json.dumps(
            {"items": experience.items, "tokens": experience.tokens, "bound": s.experience_tokens,
             "dropped": experience.dropped}, indent=2))
        return TrainOutput(model=policy, compute=so_far(), scaling=points)
