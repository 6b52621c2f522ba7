"""A training killed part-way continues from its last save with the numbers it would have had:
a supervised stage, a method of two stages (the finished one is not trained again), and GRPO /
SPEAR (RNG, task order, replay buffer), each against the same training run without a stop."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from agentbench import api
from agentbench.methods import grpo as grpo_module
from agentbench.methods import spear as spear_module
from agentbench.models import tiny
from agentbench.training import sft as sft_module
from agentbench.training.checkpoints import load_for_training
from agentbench.training.examples import ChatExample
from agentbench.training.resume import SAVE_EVERY_ENV, STATE_FILE, Resume, rewind_log
from agentbench.training.sft import train_sft
from agentbench.training.trainer import OptimConfig, PolicyTrainer

EXAMPLES = [ChatExample(messages=[{"role": "user", "content": f"Step {i}?"},
                                  {"role": "assistant", "content": f"Action: move {i % 4}"}], kind="expert")
            for i in range(12)]
RL_FAST = ["budget.eval_tasks=2", "budget.forgetting=false", "limits.max_turns=2", "steps=3", "tasks_per_step=2",
           "group_size=2", "method.temperature=1.5"]


class Killed(Exception):
    """Stands in for the process being killed."""


def _sft(tmp_path, log, stop_at=None, stage="sft"):
    model, tokenizer = load_for_training(tiny())

    def on_step(done, total):
        if done == stop_at:
            raise Killed

    return train_sft(model, tokenizer, EXAMPLES, steps=5, batch_size=2, grad_accum=1, max_seq_len=64,
                     learning_rate=1e-3, config=OptimConfig(), seed=0, log_path=log, stage=stage,
                     on_step=on_step, resume_dir=tmp_path / "trainer" / stage)


def _count_steps(monkeypatch):
    """Optimizer steps taken from now on (a resume that trained from scratch would take them all)."""
    calls = []
    real = PolicyTrainer.step

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PolicyTrainer, "step", counted)
    return calls


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _log(path, stage):
    return [json.loads(line) for line in path.read_text().splitlines() if json.loads(line)["stage"] == stage]


def test_a_killed_supervised_stage_continues_where_it_was_saved(tmp_path, monkeypatch):
    monkeypatch.setenv(SAVE_EVERY_ENV, "0")
    whole, stats = _sft(tmp_path / "a", tmp_path / "a.jsonl")
    (tmp_path / "b").mkdir()
    with pytest.raises(Killed):
        _sft(tmp_path / "b", tmp_path / "b.jsonl", stop_at=3)
    assert (tmp_path / "b" / "trainer" / "sft" / STATE_FILE).exists()
    steps = _count_steps(monkeypatch)
    resumed, again = _sft(tmp_path / "b", tmp_path / "b.jsonl")
    assert len(steps) == 2  # steps 4 and 5 only: the first three came from the saved state
    w, r = _weights(whole), _weights(resumed)
    assert all(torch.equal(w[k], r[k]) for k in w)
    assert (again.examples, again.tokens, again.loss_tokens, again.optimizer_steps) == \
        (stats.examples, stats.tokens, stats.loss_tokens, stats.optimizer_steps)
    assert again.final_loss == pytest.approx(stats.final_loss, abs=0)
    a, b = _log(tmp_path / "a.jsonl", "sft"), _log(tmp_path / "b.jsonl", "sft")
    assert [x["step"] for x in b] == [1, 2, 3, 4, 5]  # no step twice, none missing
    assert [x["loss"] for x in a] == [x["loss"] for x in b]


def test_a_finished_stage_is_restored_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv(SAVE_EVERY_ENV, "off")
    _sft(tmp_path, tmp_path / "log.jsonl")  # saves nothing
    assert not (tmp_path / "trainer").exists()
    monkeypatch.setenv(SAVE_EVERY_ENV, "1e9")  # only the end of the stage is saved
    trained, stats = _sft(tmp_path, tmp_path / "log.jsonl", stage="world_model")
    calls = []
    monkeypatch.setattr(sft_module.PolicyTrainer, "step", lambda *a, **k: calls.append(1))
    restored, again = _sft(tmp_path, tmp_path / "log.jsonl", stage="world_model")
    assert calls == []
    w, r = _weights(trained), _weights(restored)
    assert all(torch.equal(w[k], r[k]) for k in w)
    assert again.optimizer_steps == 5 and again.examples == stats.examples
    assert [x["step"] for x in _log(tmp_path / "log.jsonl", "world_model")] == [1, 2, 3, 4, 5]


def test_a_state_of_other_data_or_a_cut_log_line_is_not_taken(tmp_path, monkeypatch):
    monkeypatch.setenv(SAVE_EVERY_ENV, "0")
    with pytest.raises(Killed):
        _sft(tmp_path, tmp_path / "log.jsonl", stop_at=2)
    model, tokenizer = load_for_training(tiny())
    trainer = PolicyTrainer(model, tokenizer, OptimConfig(), learning_rate=1e-3, total_steps=5, seed=0)
    assert Resume(tmp_path / "trainer" / "sft", {"stage": "sft", "data": "other"}).load(trainer) is None
    log = tmp_path / "log.jsonl"
    log.write_text(log.read_text() + '{"stage": "sft", "st')  # the kill cut a line
    rewind_log(log, "sft", 1)
    assert [x["step"] for x in _log(log, "sft")] == [1]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["grpo", "spear"])
def test_a_killed_rl_run_continues_with_the_same_curve_and_weights(tmp_path, tiny_model, monkeypatch, method):
    monkeypatch.setenv(SAVE_EVERY_ENV, "0")
    # The tiny model never makes a valid move, so every group would be skipped: a reward that
    # varies with the sampled tokens makes each step an update, and SPEAR's buffer fill up.
    def varied(record, penalty):
        return float(hashlib.sha256("".join(t.response for t in record.trajectory).encode()).digest()[0] % 4)

    monkeypatch.setattr(grpo_module, "shaped_reward", varied)
    monkeypatch.setattr(spear_module, "shaped_reward", varied)
    sets = [*RL_FAST, "replay_min_reward=-1"] if method == "spear" else RL_FAST
    [whole] = api.run(method=method, env="frozenlake", model="tiny", out=tmp_path / "a", sets=sets)
    assert whole.result.train.optimizer_steps == 3
    real = grpo_module.RolloutEngine.run
    calls = []

    def dies_in_step_3(self, jobs):
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return real(self, jobs)

    monkeypatch.setattr(grpo_module.RolloutEngine, "run", dies_in_step_3)
    with pytest.raises(Killed):
        api.run(method=method, env="frozenlake", model="tiny", out=tmp_path / "b", sets=sets)
    monkeypatch.setattr(grpo_module.RolloutEngine, "run", real)
    run_dir = tmp_path / "b" / whole.path.parent.name
    assert (run_dir / "trainer" / "rl" / STATE_FILE).exists()
    steps = _count_steps(monkeypatch)
    [resumed] = api.run(method=method, env="frozenlake", model="tiny", out=tmp_path / "b", sets=sets, resume=True)
    assert len(steps) == 1  # step 3 only: steps 1 and 2 came from the saved state
    timing = {"rollout_s", "update_s"}
    a = [s.model_dump(exclude=timing) for s in whole.result.train.rl_steps]
    b = [s.model_dump(exclude=timing) for s in resumed.result.train.rl_steps]
    assert a == b and len(b) == 3
    assert resumed.result.train.counters == whole.result.train.counters
    assert resumed.result.artifacts == whole.result.artifacts  # the evaluation after RL: same episodes
    assert [x["step"] for x in _log(run_dir / "train_log.jsonl", "rl")] == [1, 2, 3]
    assert not (run_dir / "trainer").exists()  # removed once the checkpoint is saved
    if method == "spear":
        assert resumed.result.train.counters["replay_used"] > 0


def test_a_lora_state_holds_the_adapters_only(tmp_path):
    model, tokenizer = load_for_training(tiny())
    trainer = PolicyTrainer(model, tokenizer, OptimConfig(lora=True, lora_r=2), learning_rate=1e-3, total_steps=2,
                            seed=0)
    state = trainer.state_dict()
    assert state["model"] and all("lora_" in name for name in state["model"])
    before = {k: v.clone() for k, v in state["model"].items()}
    with torch.no_grad():
        for p in trainer.model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    trainer.load_state_dict({**state, "model": before})
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters() if p.requires_grad)
