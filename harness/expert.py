"""Expert demonstrations: the env's expert played through the train tasks, step by step.

Each step keeps what a trainer needs: the prompt's history and observation, the expert's
response, the next observation and the action prefix (so that any state can be reached again
by replay when the env cannot snapshot).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agentbench.env import Env, NoExpert, Task, sha256_json
from agentbench.fileio import atomic_write_text
from agentbench.prompting import Exchange, PromptBuilder, react_response
from agentbench.training.examples import ChatExample


@dataclass(frozen=True)
class ExpertStepRecord:
    task_id: str
    seed: int
    index: int
    prefix: tuple[str, ...]
    """Expert actions taken before this step, from ``reset``."""
    history: tuple[Exchange, ...]
    observation: str
    action: str
    thought: str
    next_observation: str
    reward: float
    done: bool

    @property
    def response(self) -> str:
        return react_response(self.action, self.thought)


@dataclass
class ExpertData:
    """The expert trajectories of a run's train tasks, and which tasks the expert failed."""

    tasks: list[Task]
    steps: list[ExpertStepRecord]
    failed_tasks: list[str] = field(default_factory=list)
    env_steps: int = 0
    env_errors: list[str] = field(default_factory=list)
    """Failed tasks whose expert episode ended in an env error (a step that raised or ran past its
    time limit), each ``task id: error``; they are in ``failed_tasks`` too."""

    def sha256(self) -> str:
        return sha256_json([asdict(s) for s in self.steps])

    def task(self, task_id: str) -> Task:
        return next(t for t in self.tasks if t.id == task_id)

    def fraction(self, fraction: float) -> ExpertData:
        """The first ``fraction`` of the trajectories (for the expert-data scaling axis)."""
        ids = list(dict.fromkeys(s.task_id for s in self.steps))
        keep = set(ids[: max(1, round(len(ids) * fraction))])
        return ExpertData([t for t in self.tasks if t.id in keep], [s for s in self.steps if s.task_id in keep],
                          self.failed_tasks, self.env_steps, self.env_errors)

    def examples(self, prompts: PromptBuilder) -> list[ChatExample]:
        """Imitation data: one example per expert step, prompted exactly as at evaluation."""
        return [
            ChatExample(tuple(prompts.messages(s.history, s.observation))
                        + ({"role": "assistant", "content": s.response},))
            for s in self.steps
        ]

    def save(self, path: Path) -> None:
        """Steps as JSONL, and a side file with what else was counted (written last: its
        presence marks a complete save)."""
        atomic_write_text(path, "".join(json.dumps(asdict(s)) + "\n" for s in self.steps))
        atomic_write_text(path.with_suffix(".meta.json"),
                          json.dumps({"failed_tasks": self.failed_tasks, "env_steps": self.env_steps,
                                      "env_errors": self.env_errors}))


def load_expert(path: Path, tasks: Sequence[Task]) -> ExpertData | None:
    """Expert data saved by :meth:`ExpertData.save`, or None when absent or incomplete."""
    meta_path = path.with_suffix(".meta.json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        steps = []
        for line in path.read_text().splitlines():
            raw = json.loads(line)
            raw["prefix"] = tuple(raw["prefix"])
            raw["history"] = tuple(Exchange(**h) for h in raw["history"])
            steps.append(ExpertStepRecord(**raw))
    except (ValueError, TypeError, KeyError):
        return None
    failed = set(meta["failed_tasks"])
    return ExpertData([t for t in tasks if t.id not in failed], steps, list(meta["failed_tasks"]), meta["env_steps"],
                      list(meta.get("env_errors", [])))


def collect_expert(
    make_env: Callable[[], Env], tasks: Sequence[Task], max_turns: int, seed: int = 0,
    on_task: Callable[[], None] | None = None,
) -> ExpertData:
    """Play the expert on every task; trajectories that do not succeed are left out (and listed).
    An env error on a task (a reset or step that raises, or runs past its time limit) fails that
    task, is listed in ``env_errors``, and the next task gets a fresh env; an env server that is
    gone (:class:`EnvServerError`) ends the collection."""
    from agentbench.errors import EnvServerError

    env = make_env()
    data = ExpertData(tasks=list(tasks), steps=[])
    try:
        for task in tasks:
            steps: list[ExpertStepRecord] = []
            history: list[Exchange] = []
            success = False
            try:
                observation = env.reset(task, seed=seed)
                for index in range(max_turns):
                    move = env.expert_step()
                    result = env.step(move.action)
                    data.env_steps += 1
                    record = ExpertStepRecord(task.id, seed, index, tuple(s.action for s in steps),
                                              tuple(history), observation, move.action, move.thought,
                                              result.observation, result.reward, result.done)
                    steps.append(record)
                    history.append(Exchange(observation, record.response))
                    observation = result.observation
                    if result.done:
                        success = result.info.success
                        break
            except NoExpert:
                success = False
            except EnvServerError:
                raise
            except Exception as exc:  # counted, and the collection goes on with a fresh env
                success = False
                data.env_errors.append(f"{task.id}: {type(exc).__name__}: {exc}"[:300])
                with contextlib.suppress(Exception):  # (a step still running may hold it)
                    env.close()
                env = make_env()
            if success:
                data.steps.extend(steps)
            else:
                data.failed_tasks.append(task.id)
            if on_task is not None:
                on_task()
    finally:
        env.close()
    data.tasks = [t for t in data.tasks if t.id not in set(data.failed_tasks)]
    return data
