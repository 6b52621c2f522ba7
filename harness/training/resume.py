"""Resumable training: a killed training continues from its last save with the numbers it would
have had without stopping.

A :class:`Resume` saves, in one file written atomically, the trainer's state (weights, optimiser,
learning-rate schedule, torch's RNG) and the loop's own state (the step reached, counters, the
curve so far, a method's replay buffer). A save happens after an optimizer step once
``AGENTBENCH_SAVE_EVERY_S`` seconds (default 300; ``off`` saves nothing) have passed since the last
one, and at the end of a supervised stage (its weights only), so that a method of several stages
skips the finished ones when it is run again. The state is tagged with what it belongs to (the
stage, its step count, a hash of its training data); a state of anything else is ignored. The
session deletes the folder once the training's checkpoint is saved.

Not under ``accelerate launch`` (several processes): there a killed training starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentbench.fileio import atomic_write_text, write_error
from agentbench.training import distributed

SAVE_EVERY_ENV = "AGENTBENCH_SAVE_EVERY_S"
DEFAULT_SAVE_EVERY_S = 300.0
STATE_FILE = "state.pt"
TRAINER_DIR = "trainer"
"""The sub-folder of a training's workdir that holds its resume states."""


def save_interval() -> float | None:
    """Seconds between saves (``AGENTBENCH_SAVE_EVERY_S``; 0 saves after every step, ``off``
    never saves)."""
    raw = os.environ.get(SAVE_EVERY_ENV)
    if raw is None or raw == "":
        return DEFAULT_SAVE_EVERY_S
    if raw.strip().lower() == "off":
        return None
    try:
        value = float(raw)
    except ValueError:
        from agentbench.errors import ConfigError

        raise ConfigError(f"{SAVE_EVERY_ENV}={raw!r} is not a number of seconds") from None
    return max(value, 0.0)


def data_hash(samples: Sequence[Any]) -> str:
    """A hash of training samples' token ids and loss masks (what a saved stage trained on)."""
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([list(s.input_ids), [int(m) for m in s.loss_mask]]).encode())
    return h.hexdigest()


class Resume:
    """The saved state of one training loop in ``folder`` (None: resuming is off)."""

    def __init__(self, folder: Path | None, tag: dict[str, Any]):
        self.every_s = save_interval()
        on = folder is not None and self.every_s is not None and distributed.world_size() == 1
        self.folder = folder if on else None
        self.tag = tag
        self._last = time.monotonic()

    @property
    def path(self) -> Path | None:
        return self.folder / STATE_FILE if self.folder is not None else None

    def load(self, trainer: Any) -> dict[str, Any] | None:
        """The loop state saved for this tag, with ``trainer`` restored to it; None when there is
        none (or it belongs to another stage, step count or data)."""
        import torch

        path = self.path
        if path is None or not path.exists():
            return None
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved.get("tag") != self.tag:
            return None
        trainer.load_state_dict(saved["trainer"])
        self._last = time.monotonic()
        return saved["loop"]

    def due(self) -> bool:
        return self.folder is not None and time.monotonic() - self._last >= self.every_s

    def save(self, trainer: Any, loop: dict[str, Any], weights_only: bool = False) -> None:
        """Write the state (a temporary file renamed over the old one: a kill mid-save leaves the
        previous state intact); ``weights_only`` for a finished stage."""
        import torch

        path = self.path
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"tag": self.tag, "trainer": trainer.state_dict(weights_only), "loop": loop}, tmp)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise write_error(path, exc) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._last = time.monotonic()


def rewind_log(log_path: Path | None, stage: str, through: int) -> None:
    """Keep ``stage``'s lines of the train log up to step ``through`` (0: none of them) and every
    other stage's lines: the log of a resumed training reads as if it had never stopped."""
    if log_path is None or not log_path.exists():
        return
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        if record.get("stage") != stage or int(record.get("step", 0)) <= through:
            kept.append(line)
    atomic_write_text(log_path, "".join(line + "\n" for line in kept))
