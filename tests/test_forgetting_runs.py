"""The forgetting check inside runs and alone, with the tiny model: the result section and side
file, resuming without recomputing, the answer cache across a crash, the command's errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbench.artifacts import SharedCache
from agentbench.backends import BackendOptions, SamplingParams
from agentbench.backends.hf import HFBackend
from agentbench.cli import app
from agentbench.forgetting.answers import ANSWERS_FILE, generate_answers
from agentbench.forgetting.config import ForgettingConfig
from agentbench.forgetting.data import load_prompts
from agentbench.locking import holds
from agentbench.models import file_sha256
from agentbench.protocols import ProtocolOutput
from agentbench.results import FORGETTING_FILE, ForgettingPromptRecord, ForgettingResult, read_result

runner = CliRunner()
SAMPLE = Path(__file__).parent / "fixtures" / "ifeval_sample.jsonl"
IFEVAL = ["--set", f"ifeval_data={SAMPLE}", "--set", "budget.forgetting_max_new_tokens=16",
          "--set", "ifeval_batch=4"]
RUN = ["run", "--method", "il", "--env", "frozenlake", "--model", "tiny", "--quiet",
       "--set", "budget.train_tasks=4", "--set", "budget.eval_tasks=4", "--set", "budget.rollout_batch=4", *IFEVAL]


def _no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, *args, **kwargs):
        raise AssertionError("a model was loaded for generation although everything was done")

    monkeypatch.setattr(HFBackend, "__init__", refuse)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model) -> Path:
    out = tmp_path_factory.mktemp("runs")
    done = runner.invoke(app, [*RUN, "--out", str(out)])
    assert done.exit_code == 0, done.output
    return next(out.glob("il__*/result.json"))


def test_a_training_run_writes_the_forgetting_section_and_side_file(trained_run):
    result = read_result(trained_run)
    f = result.forgetting
    assert f is not None and f.benchmark == "ifeval" and f.n == 6
    assert f.source == f"file:{SAMPLE.resolve()}" and f.dataset_sha256 == file_sha256(SAMPLE)
    for scores in (f.before, f.after):
        assert 0.0 <= scores.prompt_level_strict <= scores.prompt_level_loose <= 1.0
    assert f.delta.inst_level_strict == pytest.approx(f.after.inst_level_strict - f.before.inst_level_strict)
    assert f.test.name.startswith("exact McNemar") and 0.0 <= f.test.p_value <= 1.0
    assert f.test.details["bootstrap"]["seed"] == result.protocol.seed
    extra = f.extra
    assert extra["side_file"] == FORGETTING_FILE and extra["lm_eval"] == result.environment.lm_eval
    assert extra["generation"]["temperature"] == 0.0 and extra["generation"]["max_new_tokens"] == 16
    assert extra["models"]["before"]["sha256"] == result.model.revision_or_sha256
    assert extra["models"]["after"]["sha256"] == result.model.checkpoint_sha256
    assert extra["models"]["before"]["generated_now"] == 6 and extra["tokenizer_data"]["files_sha256"]
    assert extra["data"]["prompts_used"] == 6 and extra["scope"]["checkpoint"] == result.model.checkpoint_path
    side = trained_run.parent / FORGETTING_FILE
    assert result.artifacts["forgetting_jsonl_sha256"] == hashlib.sha256(side.read_bytes()).hexdigest()
    records = [ForgettingPromptRecord.model_validate_json(line) for line in side.read_text().splitlines()]
    keys = [json.loads(line)["key"] for line in SAMPLE.read_text().splitlines()]
    assert [r.key for r in records] == keys
    assert sum(r.before.prompt_level_strict for r in records) / 6 == pytest.approx(f.before.prompt_level_strict)


def test_resume_after_everything_is_done_recomputes_nothing(trained_run, monkeypatch):
    first = read_result(trained_run)
    side = (trained_run.parent / FORGETTING_FILE).read_text()
    _no_model_loads(monkeypatch)
    done = runner.invoke(app, [*RUN, "--out", str(trained_run.parent.parent), "--resume"])
    assert done.exit_code == 0, done.output
    again = read_result(trained_run)
    assert again.forgetting.before == first.forgetting.before and again.forgetting.after == first.forgetting.after
    assert again.forgetting.test.p_value == first.forgetting.test.p_value
    assert again.forgetting.extra["models"]["after"]["generated_now"] == 0
    assert (trained_run.parent / FORGETTING_FILE).read_text() == side


def test_the_command_alone_reuses_the_runs_answers_and_finds_the_base(trained_run, monkeypatch):
    checkpoint = read_result(trained_run).model.checkpoint_path
    _no_model_loads(monkeypatch)
    out = trained_run.parent.parent
    done = runner.invoke(app, ["forgetting", "--model", checkpoint, "--out", str(out), *IFEVAL])
    assert done.exit_code == 0, done.output
    assert "instruction-level strict" in done.output and "McNemar" in done.output
    path = next(out.glob("forgetting__tiny+il__vs__tiny__*/forgetting.json"))
    alone = ForgettingResult.model_validate_json(path.read_text())
    assert alone.after == read_result(trained_run).forgetting.after
    assert (path.parent / FORGETTING_FILE).exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--model", "tiny"], "records no base model"),
    (["--model", "tiny", "--base", "tiny", "--set", "ifeval_batchh=2"], "did you mean 'ifeval_batch'"),
])
def test_the_command_rejects_bad_input_in_one_line(tmp_path, args, needle):
    done = runner.invoke(app, ["forgetting", *args, "--out", str(tmp_path)])
    assert done.exit_code == 2
    assert needle in done.output and "Traceback" not in done.output


def test_no_check_without_a_new_checkpoint_or_when_the_budget_says_no(tmp_path, tiny_model):
    from agentbench.method import Compute
    from agentbench.prompting import PromptConfig
    from agentbench.session import RunSession
    from agentbench.spec import resolve_spec

    def spec(*sets: str):
        return resolve_spec(method="none", env="frozenlake", protocol="in-domain", model="tiny", backend="hf",
                            budget="smoke", seed=0, sets=list(sets))

    untrained = ProtocolOutput(train=Compute(), envs=[], model=tiny_model, prompt=PromptConfig())
    assert RunSession(spec(), tmp_path).check_forgetting(untrained) is None
    other = ProtocolOutput(train=Compute(), envs=[], model=tiny_model, prompt=PromptConfig(),
                           base_model=tiny_model.__class__("x", str(tmp_path), "elsewhere"))
    assert RunSession(spec("budget.forgetting=false"), tmp_path).check_forgetting(other) is None
    assert spec(f"ifeval_data={SAMPLE}").forgetting.ifeval_data == str(SAMPLE)


def test_a_crash_mid_generation_keeps_the_finished_batches(tmp_path, tiny_model, monkeypatch):
    prompts = load_prompts(ForgettingConfig(ifeval_data=str(SAMPLE))).prompts
    calls: list[int] = []
    real = HFBackend.generate

    def crash_on_second_call(self, batch, params):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(self, batch, params)

    monkeypatch.setattr(HFBackend, "generate", crash_on_second_call)
    settings = {"model": tiny_model, "prompts": prompts, "prompts_sha256": "sample",
                "sampling": SamplingParams(max_new_tokens=16), "backend": "hf", "options": BackendOptions(),
                "batch": 2}
    with pytest.raises(RuntimeError, match="killed"):
        generate_answers(**settings, shared=SharedCache(tmp_path / "shared"))
    log = next((tmp_path / "shared").glob(f"ifeval-*/{ANSWERS_FILE}"))
    assert len(log.read_text().splitlines()) == 2  # the first batch survived
    with open(log, "a") as fh:
        fh.write('{"batch": 1, "key": 10')  # and a torn line from the kill
    resumed = generate_answers(**settings, shared=SharedCache(tmp_path / "shared"))
    assert calls == [2, 2, 2, 2] and resumed.generated_now == 4
    reference = generate_answers(**settings, shared=SharedCache(tmp_path / "reference"))
    assert [a.key for a in resumed.answers] == [p.key for p in prompts]
    assert resumed.answers == reference.answers
    again = generate_answers(**settings, shared=SharedCache(tmp_path / "shared"))
    assert again.generated_now == 0 and len(calls) == 7


def test_a_bad_prompt_file_fails_before_training(tmp_path, monkeypatch):
    import agentbench.session

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the IF-Eval prompt file is missing")

    monkeypatch.setattr(agentbench.session.RunSession, "train", no_training)
    done = runner.invoke(app, ["run", "--method", "il", "--env", "frozenlake", "--model", "tiny", "--quiet",
                               "--out", str(tmp_path), "--set", f"ifeval_data={tmp_path / 'missing.jsonl'}"])
    assert done.exit_code == 2 and "ifeval_data: no file" in done.output


def test_the_answer_entry_is_let_go_once_its_answers_are_back(tmp_path, tiny_model, monkeypatch):
    """A run that goes on after its IF-Eval answers (more starts, other evaluations) must not keep
    a second run into the same output folder waiting on the entry; nor after a crash."""
    prompts = load_prompts(ForgettingConfig(ifeval_data=str(SAMPLE))).prompts[:2]
    settings = {"model": tiny_model, "prompts": prompts, "prompts_sha256": "sample",
                "sampling": SamplingParams(max_new_tokens=4), "backend": "hf", "options": BackendOptions(),
                "batch": 2, "shared": SharedCache(tmp_path / "shared")}
    answers = generate_answers(**settings)
    folder = Path(answers.folder)
    assert not holds(folder)
    other = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from agentbench.locking import acquire; acquire(Path(sys.argv[1]))", str(folder)],
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    (folder / ANSWERS_FILE).unlink()

    def killed(self, batch, params):
        raise RuntimeError("killed")

    monkeypatch.setattr(HFBackend, "generate", killed)
    with pytest.raises(RuntimeError, match="killed"):
        generate_answers(**settings)
    assert not holds(folder)
