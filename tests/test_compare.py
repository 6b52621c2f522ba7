"""``agentbench compare``: real runs of the tiny model compared end to end.

The tiny model learns the plugin test env ``counter`` (tests/fixtures/plugin: reach a target
by ``inc``) in ~45 optimizer steps, to 100% success, while the untrained model never speaks
the action format: a clear, cheap difference in success rate. The real envs would need far
more training for the tiny model to solve any task.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbench import registry
from agentbench.cli import app
from agentbench.compare import Comparison
from agentbench.results import FORGETTING_FILE, ForgettingPromptRecord, IFEvalOutcome

runner = CliRunner()
PLUGIN = Path(__file__).parent / "fixtures" / "plugin"
COMMON = ["--quiet", "--set", "budget.rollout_batch=10", "--set", "budget.forgetting=false"]
TRAIN = ["--set", "budget.train_tasks=10", "--set", "budget.batch_size=4", "--set", "budget.epochs=6",
         "--set", "budget.learning_rate=0.01"]


@pytest.fixture(scope="module")
def counter_env(tmp_path_factory):
    """The plugin env, installed as a user would (pip), visible to this process."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PLUGIN)], check=True, capture_output=True)
    sys.path.insert(0, str(site))
    registry.refresh()
    yield
    sys.path.remove(str(site))
    registry.refresh()


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def _folder(out: Path) -> Path:
    return next(out.glob("*/result.json")).parent


@pytest.fixture(scope="module")
def runs(counter_env, tiny_model, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    made: dict[str, Path] = {}

    def run(name: str, *args: str, model: str = "tiny") -> None:
        _invoke(*args, "--model", model, "--out", str(root / name), *COMMON)
        made[name] = _folder(root / name)

    ten = ["--set", "budget.eval_tasks=10"]
    run("trained", "run", "--method", "il", "--env", "counter", *TRAIN, *ten)
    run("again", "run", "--method", "il", "--env", "counter", *TRAIN, *ten)
    run("untrained", "run", "--method", "none", "--env", "counter", *ten)
    checkpoint = str(made["trained"] / "checkpoint")
    # evaluations of the trained checkpoint and of the untrained model (protocol eval, comparable)
    few = ["--set", "budget.eval_tasks=3"]
    run("few_trained", "eval", "--env", "counter", *few, model=checkpoint)
    run("few_untrained", "eval", "--env", "counter", *few)
    seeds = [*ten, "--set", "budget.eval_seeds=2"]
    run("seeds_trained", "eval", "--env", "counter", *seeds, model=checkpoint)
    run("seeds_untrained", "eval", "--env", "counter", *seeds)
    run("frozenlake", "run", "--method", "none", "--env", "frozenlake", *ten)
    return made


def _compare(base: Path, new: Path, *extra: str):
    return runner.invoke(app, ["compare", str(base), str(new), *extra])


def test_identical_runs_pass(runs, tmp_path):
    assert (runs["trained"] / "episodes.jsonl").read_bytes() == (runs["again"] / "episodes.jsonl").read_bytes()
    out = tmp_path / "c.json"
    done = _compare(runs["trained"], runs["again"], "--json", str(out))
    assert done.exit_code == 0, done.output
    c = Comparison.model_validate_json(out.read_text())
    (m,) = c.metrics
    assert (m.metric, m.test, m.n_pairs, m.base_rate, m.new_rate) == ("counter/test", "exact McNemar", 10, 100, 100)
    assert (m.delta, m.ci, m.p_value, m.verdict.value) == (0, (0, 0), 1, "pass")
    assert c.verdict.value == "pass" and c.exit_code == 0
    assert "counter/test" in done.output and "PASS" in done.output


def test_untrained_model_against_trained_is_a_regression(runs, tmp_path):
    out = tmp_path / "c.json"
    done = _compare(runs["trained"], runs["untrained"], "--json", str(out))
    assert done.exit_code == 1, done.output
    m = Comparison.model_validate_json(out.read_text()).metrics[0]
    assert (m.base_only, m.new_only, m.delta) == (10, 0, -100)
    assert m.p_value == pytest.approx(2 / 1024)  # exact McNemar, 10 discordant pairs all one way
    assert m.verdict.value == "regression" and "REGRESSION" in done.output
    # the other way round NEW is better: non-inferior, a pass
    assert _compare(runs["untrained"], runs["trained"]).exit_code == 0


def test_several_seeds_use_the_bootstrap_and_are_reproducible(runs, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _compare(runs["seeds_trained"], runs["seeds_untrained"], "--json", str(a)).exit_code == 1
    assert _compare(runs["seeds_trained"], runs["seeds_untrained"], "--json", str(b)).exit_code == 1
    assert a.read_text() == b.read_text()  # same inputs, same seed: same output
    m = Comparison.model_validate_json(a.read_text()).metrics[0]
    assert m.test.startswith("bootstrap over tasks") and (m.n_pairs, m.n_tasks, m.seeds_per_task) == (20, 10, 2)
    assert m.p_value == pytest.approx(2 / 1024)  # sign flips over 10 tasks, all one way
    assert m.ci == (-100, -100)


def test_a_tiny_run_is_inconclusive_with_a_sample_size(runs, tmp_path):
    out = tmp_path / "c.json"
    done = _compare(runs["few_trained"], runs["few_untrained"], "--json", str(out))
    assert done.exit_code == 2, done.output
    m = Comparison.model_validate_json(out.read_text()).metrics[0]
    assert (m.base_only, m.delta, m.p_value) == (3, -100, 0.25)  # 2 * 0.5^3: not significant
    assert m.verdict.value == "inconclusive"
    assert m.needed is not None and m.needed.target == "regression"
    assert m.needed.tasks == 6  # all discordant and lost: 6 pairs give exact p = 2/64 < 0.05
    assert f"about {m.needed.tasks} tasks" in done.output and "INCONCLUSIVE" in done.output


def test_different_envs_or_task_sets_are_refused(runs):
    done = _compare(runs["untrained"], runs["frozenlake"])
    assert done.exit_code == 3
    assert "envs[counter/test] (only in BASE)" in done.output and "envs[frozenlake/test] (only in NEW)" in done.output
    done = _compare(runs["few_untrained"], runs["seeds_untrained"])
    assert done.exit_code == 3
    assert done.output.strip() == ("error: BASE and NEW are not comparable: envs[counter/test].seeds, "
                                   "envs[counter/test].task_set_sha256 differ")


def _copy(run: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for name in ("result.json", "episodes.jsonl"):
        shutil.copy(run / name, to / name)
    return to


def _forgetting(path: Path, after: list[bool]) -> None:
    def outcome(ok: bool) -> IFEvalOutcome:
        return IFEvalOutcome(response="...", prompt_level_strict=ok, prompt_level_loose=ok,
                             inst_level_strict=[ok], inst_level_loose=[ok])

    lines = [ForgettingPromptRecord(key=1000 + i, instruction_id_list=["punctuation:no_comma"],
                                    before=outcome(True), after=outcome(ok)).model_dump_json()
             for i, ok in enumerate(after)]
    (path / FORGETTING_FILE).write_text("\n".join(lines) + "\n")


def test_forgetting_is_one_more_metric_in_the_correction(runs, tmp_path):
    base, new = _copy(runs["trained"], tmp_path / "base"), _copy(runs["again"], tmp_path / "new")
    _forgetting(base, [True] * 40)
    _forgetting(new, [True] * 25 + [False] * 15)  # NEW forgot 15 of 40 prompts
    out = tmp_path / "c.json"
    done = _compare(base, new, "--json", str(out))
    assert done.exit_code == 1, done.output
    c = Comparison.model_validate_json(out.read_text())
    env, forgetting = c.metrics
    assert env.verdict.value == "pass"
    assert (forgetting.metric, forgetting.base_only, forgetting.delta) == ("forgetting/ifeval", 15, -37.5)
    assert forgetting.p_adjusted == pytest.approx(min(1, 2 * forgetting.p_value))  # Holm over 2 metrics
    assert forgetting.verdict.value == "regression"
    # only one side has the file: said, and left out
    (new / FORGETTING_FILE).unlink()
    done = _compare(base, new)
    assert done.exit_code == 0, done.output
    assert "only BASE has forgetting.jsonl" in done.output


def test_progress_is_gated_on_request(runs, tmp_path):
    import hashlib
    import json

    base, new = runs["trained"], _copy(runs["again"], tmp_path / "new")
    episodes = [json.loads(line) for line in (new / "episodes.jsonl").read_text().splitlines()]
    for e in episodes:
        e["progress"] = 0.5  # same successes, half the progress
    (new / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    result = json.loads((new / "result.json").read_text())
    result["artifacts"]["episodes_jsonl_sha256"] = hashlib.sha256((new / "episodes.jsonl").read_bytes()).hexdigest()
    (new / "result.json").write_text(json.dumps(result))
    assert _compare(base, new).exit_code == 0  # success alone: unchanged
    out = tmp_path / "c.json"
    done = _compare(base, new, "--progress", "--json", str(out))
    assert done.exit_code == 1, done.output
    success, progress = Comparison.model_validate_json(out.read_text()).metrics
    assert success.verdict.value == "pass"
    assert (progress.metric, progress.delta, progress.base_only) == ("counter/test/progress", -50, 10)
    assert progress.p_value == pytest.approx(2 / 1024)  # sign flips over 10 tasks, all one way
    assert progress.verdict.value == "regression"


def test_bad_input_is_one_line_with_exit_2(runs, tmp_path):
    good = runs["trained"]
    missing = _compare(tmp_path / "nowhere", good)
    assert missing.exit_code == 2 and "cannot read" in missing.output
    corrupt = _copy(good, tmp_path / "corrupt")
    (corrupt / "result.json").write_text('{"schema_version": 1, "run_id": ')
    done = _compare(corrupt, good)
    assert done.exit_code == 2 and "corrupt" in done.output and done.output.strip().count("\n") == 0
    no_episodes = _copy(good, tmp_path / "no_episodes")
    (no_episodes / "episodes.jsonl").unlink()
    done = _compare(good, no_episodes)
    assert done.exit_code == 2 and "episodes.jsonl is missing" in done.output
    edited = _copy(good, tmp_path / "edited")
    text = (edited / "episodes.jsonl").read_text()
    (edited / "episodes.jsonl").write_text(text.replace('"success":true', '"success":false', 1))
    done = _compare(good, edited)
    assert done.exit_code == 2 and "does not match" in done.output
    assert _compare(good, good, "--alpha", "1.5").exit_code == 2


# -- rl-compat cells (constructed result folders, no model) -----------------------------------


def _rl(tmp_path, name: str, starts=None) -> Path:
    from test_publish import rl_compat_folder

    return rl_compat_folder(tmp_path, starts, name=name)


def test_cell_gates_one_start_of_two_rl_compat_results(tmp_path):
    base = _rl(tmp_path, "base")
    new = _rl(tmp_path, "new", {"none": (0, 2), "il": (4, 8), "iwm": (3, 2)})  # iwm after RL: 15 -> 2 of 16
    out = tmp_path / "c.json"
    same = runner.invoke(app, ["compare", str(base), str(new), "--cell", "il", "--json", str(out)])
    assert same.exit_code == 0, same.output
    c = Comparison.model_validate_json(out.read_text())
    assert c.cell == "il/after" and [m.metric for m in c.metrics] == ["frozenlake/test"]
    assert c.metrics[0].base_rate == c.metrics[0].new_rate == 50.0
    assert "cell il/after (rl-compat)" in same.output
    worse = runner.invoke(app, ["compare", str(base), str(new), "--cell", "iwm", "--json", str(out)])
    assert worse.exit_code == 1, worse.output
    m = Comparison.model_validate_json(out.read_text()).metrics[0]
    assert (m.base_rate, m.new_rate, m.base_only, m.new_only) == (93.75, 12.5, 13, 0)
    before = runner.invoke(app, ["compare", str(base), str(new), "--cell", "iwm/before", "--json", str(out)])
    assert before.exit_code == 0 and Comparison.model_validate_json(out.read_text()).metrics[0].base_rate == 18.75
    # the default is the top-level envs and episodes: the headline start's (il's) after-RL results
    top = runner.invoke(app, ["compare", str(base), str(new), "--json", str(out)])
    assert top.exit_code == 0 and Comparison.model_validate_json(out.read_text()).cell is None


@pytest.mark.parametrize(("cell", "needle"), [
    ("sr", "no start 'sr' in"),
    ("il/during", "expected START or START/before or START/after"),
    ("/after", "expected START or START/before or START/after"),
])
def test_unknown_cells_are_one_line_errors(tmp_path, cell, needle):
    base, new = _rl(tmp_path, "base"), _rl(tmp_path, "new")
    result = runner.invoke(app, ["compare", str(base), str(new), "--cell", cell])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and needle in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cell_of_a_result_that_is_not_rl_compat_is_a_one_line_error(tmp_path):
    from test_publish import _env, make_result, write_results

    plain = make_result("il", [_env("frozenlake", "test", 3)])
    write_results(tmp_path / "runs", [plain])
    run = tmp_path / "runs" / plain.run_id
    result = runner.invoke(app, ["compare", str(run), str(run), "--cell", "il"])
    assert result.exit_code == 2 and "is not an rl-compat result" in result.output
    assert len(result.output.strip().splitlines()) == 1


LEADERBOARDS = Path(__file__).parent.parent / "leaderboards"


def test_a_method_with_its_own_iteration_curve_compares_by_its_final_evaluation():
    """OEL's result carries per-round points (scaling[], axis iteration) beside its final
    evaluation: compare pairs the final evaluation's episodes with il's. A scaling-protocol result
    (each point a run of its own, no episodes at the top) is still refused with one line."""
    from agentbench.compare import compare
    from agentbench.errors import UsageError

    folder = LEADERBOARDS / "frozenlake-oel-smoke"
    [il] = folder.glob("il__*")
    [oel] = folder.glob("oel__*")
    comparison = compare(il, oel, progress=True)
    by_name = {m.metric: m for m in comparison.metrics}
    assert by_name["frozenlake-oel/test"].n_pairs == 24
    assert by_name["frozenlake-oel/test/progress"].verdict.value == "regression"
    [scaling] = sorted((LEADERBOARDS / "frozenlake-scaling").glob("il__*"))[:1]
    with pytest.raises(UsageError, match="is a scaling result"):
        compare(scaling, scaling)
