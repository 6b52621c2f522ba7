"""``agentbench compare BASE NEW``: a statistical regression gate between two results.

What is compared
    Every (env, split) of the results: episodes are paired by (task, seed). With one seed per
    task, the exact McNemar test on the discordant pairs (``stats.McNemar``); with several, a
    seeded bootstrap over tasks of the paired difference (``stats.PairedBootstrap``). With
    ``progress`` each env's progress rate is one more metric, always by the bootstrap. Where both
    run folders hold the forgetting check's side file, IF-Eval prompts are paired by key and
    NEW's ``after.prompt_level_strict`` is compared with BASE's by exact McNemar: one more metric.

The rule (``RULE``)
    delta = NEW - BASE in points; margin m (points). Two Holm families over all metrics:
    the difference tests (H0: delta = 0, two-sided) and the non-inferiority tests
    (H0: delta <= -m, one-sided). A metric
      - regresses when its Holm-adjusted difference p-value is below alpha and delta < -m;
      - otherwise passes when its Holm-adjusted non-inferiority p-value is below alpha, which is
        the same as its lower confidence bound at its Holm level (``lower_bound_holm``) being
        above -m, for it and every metric Holm tested before it;
      - is inconclusive otherwise.
    The overall verdict is regression if any metric regresses, else inconclusive if any is
    inconclusive, else pass (exit codes 1, 2, 0).

How many tasks would decide (inconclusive metrics)
    80% power at the strictest Holm level alpha / m, assuming the observed delta (and spread)
    are the truth, for the test that would decide it: non-inferiority when delta > -m, else the
    difference test (the regression). One seed per task: the smallest n at which the exact
    McNemar procedure has that power with D = round(psi n) discordant pairs at the observed
    discordance rate psi (``stats.mcnemar_power``). Several seeds: the normal approximation
    n = ((z_{1-a} + z_{0.8}) sd / |delta - null|)^2 with sd the spread of per-task mean
    differences (null -m or 0; a/2 for the two-sided difference test), and at least the tasks
    the sign-flip test needs to reach the level at all. Never fewer than one task more than
    observed.

Intervals and identical runs
    The McNemar interval is conditional on the number of discordant pairs and the bootstrap
    resamples the observed differences, so two runs that agree on every episode have delta = 0
    with a zero-width interval and pass. The gate answers "did behaviour on this benchmark's
    tasks change, and by how much", which is what a regression check on a fixed task set asks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbench.errors import CorruptFileError, NotComparableError, UsageError
from agentbench.evaluation import EpisodeLog, episodes_sha256
from agentbench.fileio import atomic_write_text
from agentbench.results import (
    FORGETTING_FILE,
    ForgettingPromptRecord,
    RunResult,
    comparability_key,
    read_result,
)
from agentbench.stats import (
    McNemar,
    PairedBootstrap,
    holm,
    holm_levels,
    mcnemar_sample_size,
    paired_sample_size,
)
from agentbench.trajectory import EpisodeRecord, Termination

POWER = 0.8
BOOTSTRAP_RESAMPLES = 10_000
FORGETTING_METRIC = "forgetting/ifeval"

RULE = (
    "delta = NEW - BASE (points); Holm over all metrics, separately for the difference tests "
    "(H0: delta = 0) and the non-inferiority tests (H0: delta <= -margin); regression: adjusted "
    "difference p < alpha and delta < -margin; pass: adjusted non-inferiority p < alpha (the Holm-level "
    "lower bound is above -margin); else inconclusive. Overall: regression if any metric regresses, "
    "else inconclusive if any is, else pass."
)


class Verdict(str, Enum):
    passed = "pass"
    regression = "regression"
    inconclusive = "inconclusive"


EXIT_CODES = {Verdict.passed: 0, Verdict.regression: 1, Verdict.inconclusive: 2}


class _Doc(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class SampleSize(_Doc):
    target: Literal["non-inferiority", "regression"]
    """What more data would most likely show, given the observed delta."""
    tasks: int | None
    """Tasks (clusters) needed; None when the observed delta sits exactly on the null."""
    episodes: int | None
    """Episodes needed: tasks times the seeds per task."""
    assumption: str
    """The power calculation behind the numbers."""


class MetricComparison(_Doc):
    metric: str
    """``env/split`` (success), ``env/split/progress`` (progress rate, with ``--progress``), or
    ``forgetting/ifeval`` for the forgetting check."""
    test: str
    """The paired procedure used (exact McNemar, or the bootstrap with its resamples and seed)."""
    n_pairs: int
    """Paired episodes (or prompts) compared."""
    n_tasks: int
    """Distinct tasks among the pairs (the bootstrap's clusters)."""
    seeds_per_task: int
    """Most paired seeds of any task (1: McNemar)."""
    base_rate: float
    """BASE's mean on the paired episodes (success or progress rate), in percent."""
    new_rate: float
    """NEW's mean on the paired episodes, in percent."""
    base_only: int
    """Pairs where BASE scored higher (solved and NEW did not, for success)."""
    new_only: int
    """Pairs where NEW scored higher."""
    delta: float
    """NEW - BASE, in points."""
    ci: tuple[float, float]
    """Two-sided confidence interval of delta at level 1 - alpha, not adjusted, in points."""
    lower_bound_holm: float
    """One-sided lower confidence bound of delta at this metric's Holm level, in points."""
    holm_level: float
    """The one-sided level Holm tests this metric's non-inferiority at (alpha / (m - rank))."""
    p_value: float
    """Two-sided p-value of H0: delta = 0."""
    p_adjusted: float
    """``p_value`` after Holm's correction over all metrics."""
    p_noninferiority: float
    """One-sided p-value of H0: delta <= -margin."""
    p_noninferiority_adjusted: float
    """``p_noninferiority`` after Holm's correction over all metrics."""
    verdict: Verdict
    """pass, regression or inconclusive, by the rule in ``Comparison.rule``."""
    needed: SampleSize | None = None
    """For an inconclusive metric: how much data would decide it."""
    unpaired: int = 0
    """Episodes (or prompts) present in only one of the two results, left out."""
    env_errors: int = 0
    """Pairs left out because either episode ended in an env error."""


class ResultRef(_Doc):
    path: str
    """The result.json compared."""
    run_id: str
    """Its run id."""
    method: str
    """Its method."""
    model: str
    """Its initial model."""
    checkpoint_sha256: str | None
    """The evaluated checkpoint's sha256 (None when the method does not train)."""
    status: str
    """Its status (complete, partial, error)."""


class Comparison(_Doc):
    schema_version: int = 1
    """Version of this schema."""
    base: ResultRef
    """The reference result."""
    new: ResultRef
    """The result under test."""
    comparability_key: str
    """The comparability key both results share."""
    margin: float
    """Practical margin in points: a drop smaller than this is not a regression."""
    alpha: float
    """Family-wise error rate of each Holm family."""
    seed: int
    """Seed of every bootstrap."""
    power: float
    """Power the sample-size calculation targets."""
    rule: str
    """The decision rule, in words."""
    metrics: list[MetricComparison]
    """One entry per (env, split), then the forgetting check when both results have it."""
    notes: list[str] = Field(default_factory=list)
    """What was left out or could not be compared, and why."""
    verdict: Verdict
    """Overall: regression if any metric regresses, else inconclusive if any is, else pass."""
    exit_code: int
    """0 pass, 1 regression, 2 inconclusive."""
    cell: str | None = None
    """The rl-compat cell compared (``START/before`` or ``START/after``); None: the top-level envs."""


# -- loading ----------------------------------------------------------------------------------


@dataclass
class Side:
    """One of the two results with its run folder's episodes."""

    path: Path
    result: RunResult
    episodes: list[EpisodeRecord]
    forgetting: list[ForgettingPromptRecord] | None

    @property
    def ref(self) -> ResultRef:
        r = self.result
        return ResultRef(path=str(self.path), run_id=r.run_id, method=r.method.name, model=r.model.name,
                         checkpoint_sha256=r.model.checkpoint_sha256, status=r.status)


def load_side(path: Path, cell: str | None = None) -> Side:
    """A result.json (or a run folder holding one), validated, with its episodes. ``cell``
    (``START`` or ``START/before|after``) picks one start of an rl-compat result instead of its
    top-level envs: that start's results and episodes file (``Side.result.envs`` replaced)."""
    file = path / "result.json" if path.is_dir() else path
    result = read_result(file)
    if comparability_key(result.comparability) != result.comparability_key:
        raise CorruptFileError(f"{file} is corrupt: comparability_key does not match its comparability")
    if not result.evaluated_itself:  # the scaling protocol's (a method's own curve is compared by its end)
        raise UsageError(f"{file} is a scaling result (each point has its own episodes): compare the points' runs")
    episodes_path, artifact = file.parent / "episodes.jsonl", "episodes_jsonl_sha256"
    if cell is not None:
        start, phase = parse_cell(cell)
        entry = rl_compat_start(result, start, file)
        result = result.model_copy(update={"envs": [getattr(c, phase) for c in entry.cells]})
        episodes_path, artifact = rl_compat_episodes(file.parent, result, start, phase)
    if not episodes_path.exists():
        raise CorruptFileError(f"{episodes_path} is missing: compare pairs the runs' episodes")
    recorded = result.artifacts.get(artifact)
    if recorded and episodes_sha256(episodes_path) != recorded:
        raise CorruptFileError(f"{episodes_path} does not match {file} (sha256 differs from artifacts)")
    episodes = EpisodeLog(episodes_path).load(repair=False)
    forgetting = load_forgetting(file.parent / FORGETTING_FILE) if cell is None else None
    return Side(file, result, episodes, forgetting)


# -- rl-compat cells --------------------------------------------------------------------------

RL_PHASES = ("before", "after")


def parse_cell(cell: str) -> tuple[str, str]:
    """``START`` (after RL) or ``START/before`` / ``START/after`` -> (start, phase)."""
    start, _, phase = cell.partition("/")
    phase = phase or "after"
    if not start or phase not in RL_PHASES:
        raise UsageError(f"--cell {cell!r}: expected START or START/before or START/after (e.g. il/before)")
    return start, phase


def rl_compat_start(result: RunResult, start: str, file: Path | str = "the result"):
    """The rl-compat entry of ``start``; one-line errors for a result without one."""
    if not result.rl_compat:
        raise UsageError(f"--cell: {file} is not an rl-compat result (protocol {result.protocol.name})")
    for entry in result.rl_compat:
        if entry.start == start:
            return entry
    starts = ", ".join(e.start for e in result.rl_compat)
    raise UsageError(f"--cell: no start {start!r} in {file} (its starts: {starts})")


def rl_compat_headline(result: RunResult) -> str:
    """The start whose after-RL episodes are the run folder's top-level ``episodes.jsonl``: the first
    listed method (the first start after ``none``), as the protocol runs it."""
    starts = [e.start for e in result.rl_compat]
    return starts[1] if len(starts) > 1 else starts[0]


def rl_compat_episodes(run_dir: Path, result: RunResult, start: str, phase: str) -> tuple[Path, str]:
    """(episodes file, its artifacts key) of one start and phase of an rl-compat run folder."""
    if phase == "after" and start == rl_compat_headline(result):
        return run_dir / "episodes.jsonl", "episodes_jsonl_sha256"
    entry = next(e for e in result.rl_compat if e.start == start)
    return run_dir / entry.folder / phase / "episodes.jsonl", f"{entry.folder}/{phase}/episodes_jsonl_sha256"


def load_forgetting(path: Path) -> list[ForgettingPromptRecord] | None:
    if not path.exists():
        return None
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(ForgettingPromptRecord.model_validate_json(line))
        except ValidationError as exc:
            raise CorruptFileError(f"{path} is corrupt at line {number}: {exc.errors()[0]['msg']}") from exc
    return records


# -- comparability ----------------------------------------------------------------------------


def comparability_differences(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fields of two ``comparability`` dicts that differ, e.g.
    ``envs[frozenlake/test].task_set_sha256`` or ``generation.max_new_tokens``."""
    out: list[str] = []

    def by_env(items: list) -> dict[str, Any]:
        return {f"{e.get('name')}/{e.get('split')}": e for e in items if isinstance(e, dict)}

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                sub = f"{where}.{key}" if where else str(key)
                if key not in a or key not in b:
                    out.append(f"{sub} (only in {'NEW' if key not in a else 'BASE'})")
                else:
                    walk(a[key], b[key], sub)
        elif where == "envs" and isinstance(a, list) and isinstance(b, list):
            ea, eb = by_env(a), by_env(b)
            for key in sorted(set(ea) | set(eb)):
                sub = f"envs[{key}]"
                if key not in ea or key not in eb:
                    out.append(f"{sub} (only in {'NEW' if key not in ea else 'BASE'})")
                else:
                    walk(ea[key], eb[key], sub)
        elif a != b:
            out.append(where)

    walk(base, new, "")
    return out


def check_comparable(base: RunResult, new: RunResult) -> None:
    if base.comparability_key == new.comparability_key:
        return
    diffs = comparability_differences(base.comparability, new.comparability)
    raise NotComparableError(
        "BASE and NEW are not comparable: "
        + (", ".join(diffs) + " differ" if diffs else "their comparability keys differ")
    )


# -- pairing ----------------------------------------------------------------------------------


@dataclass
class Pairs:
    """Paired outcomes of one metric: (cluster, base, new) triples; binary (success) or in [0, 1]
    (progress, which the bootstrap compares even with one seed per task)."""

    triples: list[tuple[str, float, float]]
    unpaired: int = 0
    env_errors: int = 0
    binary: bool = True

    def estimator(self, seed: int) -> McNemar | PairedBootstrap:
        per_task: dict[str, list[float]] = defaultdict(list)
        for task, b, n in self.triples:
            per_task[task].append(float(n) - float(b))
        if self.binary and all(len(v) == 1 for v in per_task.values()):
            base_only = sum(b and not n for _, b, n in self.triples)
            new_only = sum(n and not b for _, b, n in self.triples)
            return McNemar(base_only, new_only, len(self.triples))
        tasks = sorted(per_task)
        return PairedBootstrap(tuple(sum(per_task[t]) for t in tasks), tuple(len(per_task[t]) for t in tasks),
                               seed=seed, n_resamples=BOOTSTRAP_RESAMPLES)

    @property
    def n_tasks(self) -> int:
        return len({t for t, _, _ in self.triples})

    @property
    def seeds_per_task(self) -> int:
        counts: dict[str, int] = defaultdict(int)
        for t, _, _ in self.triples:
            counts[t] += 1
        return max(counts.values(), default=0)


def pair_episodes(base: list[EpisodeRecord], new: list[EpisodeRecord]) -> Pairs:
    a = {(r.task_id, r.seed): r for r in base}
    b = {(r.task_id, r.seed): r for r in new}
    common = sorted(set(a) & set(b))
    errors = [k for k in common if Termination.env_error in (a[k].termination, b[k].termination)]
    kept = [k for k in common if k not in set(errors)]
    return Pairs([(k[0], a[k].success, b[k].success) for k in kept],
                 unpaired=len(set(a) ^ set(b)), env_errors=len(errors))


def progress_pairs(success: Pairs, base: list[EpisodeRecord], new: list[EpisodeRecord]) -> Pairs:
    """The same episode pairs as ``success``'s, compared on their final progress rate."""
    a = {(r.task_id, r.seed): r for r in base}
    b = {(r.task_id, r.seed): r for r in new}
    kept = sorted(set(a) & set(b))
    kept = [k for k in kept if Termination.env_error not in (a[k].termination, b[k].termination)]
    return Pairs([(k[0], a[k].progress, b[k].progress) for k in kept], unpaired=success.unpaired,
                 env_errors=success.env_errors, binary=False)


def pair_forgetting(base: list[ForgettingPromptRecord], new: list[ForgettingPromptRecord]) -> Pairs:
    a = {str(r.key): r for r in base}
    b = {str(r.key): r for r in new}
    common = sorted(set(a) & set(b))
    return Pairs([(k, a[k].after.prompt_level_strict, b[k].after.prompt_level_strict) for k in common],
                 unpaired=len(set(a) ^ set(b)))


# -- the comparison ---------------------------------------------------------------------------


def _points(x: float) -> float:
    return round(100 * x, 6)


def sample_size(est: McNemar | PairedBootstrap, margin: float, alpha: float, m: int, seeds: int,
                n_tasks: int) -> SampleSize:
    """Tasks that would decide an inconclusive metric (see the module docstring)."""
    target = "non-inferiority" if est.delta > -margin else "regression"
    level = alpha / m
    if isinstance(est, McNemar):
        psi = est.discordant / est.n
        tasks = mcnemar_sample_size(psi, est.delta, level, POWER, margin if target == "non-inferiority" else None,
                                    start=n_tasks + 1)
        how = "exact McNemar power at the observed discordance rate and delta"
    else:
        null, one_sided = (-margin, level) if target == "non-inferiority" else (0.0, level / 2)
        tasks = paired_sample_size(est.sd, est.delta, null, one_sided, POWER)
        if tasks is not None:
            # the sign-flip test cannot reach a level below 2 / 2^T with T tasks
            tasks = max(tasks, n_tasks + 1, math.floor(math.log2(2 / level)) + 1)
        how = "normal approximation at the observed delta and spread of per-task mean differences"
    assumption = f"{POWER:.0%} power for the {target} test at the strictest Holm level alpha/{m}; {how}"
    return SampleSize(target=target, tasks=tasks, episodes=tasks * seeds if tasks is not None else None,
                      assumption=assumption)


def decide(p_adjusted: float, p_noninferiority_adjusted: float, delta: float, margin: float,
           alpha: float) -> Verdict:
    """The per-metric rule (``RULE``); delta and margin in the same unit."""
    if p_adjusted < alpha and delta < -margin:
        return Verdict.regression
    if p_noninferiority_adjusted < alpha:
        return Verdict.passed
    return Verdict.inconclusive


def overall(verdicts: list[Verdict]) -> Verdict:
    if Verdict.regression in verdicts:
        return Verdict.regression
    if Verdict.inconclusive in verdicts or not verdicts:
        return Verdict.inconclusive
    return Verdict.passed


def compare_pairs(named: list[tuple[str, Pairs]], *, margin: float, alpha: float, seed: int) -> list[MetricComparison]:
    """Test, correct and decide every metric; ``margin`` in points."""
    m_frac = margin / 100
    ests = [(name, pairs, pairs.estimator(seed)) for name, pairs in named]
    usable = [bool(p.triples) for _, p, _ in ests]
    p_diff = [e.p_value if ok else 1.0 for (_, _, e), ok in zip(ests, usable)]
    p_ni = [e.p_noninferiority(m_frac) if ok else 1.0 for (_, _, e), ok in zip(ests, usable)]
    adj_diff, adj_ni, levels = holm(p_diff), holm(p_ni), holm_levels(p_ni, alpha)
    m = len(ests)
    out = []
    for i, (name, pairs, est) in enumerate(ests):
        n = len(pairs.triples)
        if usable[i]:
            verdict = decide(adj_diff[i], adj_ni[i], est.delta, m_frac, alpha)
            ci = (_points(est.lower_bound(alpha / 2)), _points(est.upper_bound(alpha / 2)))
            lower = _points(est.lower_bound(levels[i]))
        else:  # nothing paired: nothing shown either way
            verdict, ci, lower = Verdict.inconclusive, (-100.0, 100.0), -100.0
        needed = None
        if verdict is Verdict.inconclusive and usable[i]:
            needed = sample_size(est, m_frac, alpha, m, pairs.seeds_per_task, pairs.n_tasks)
        test = ("exact McNemar" if isinstance(est, McNemar)
                else f"bootstrap over tasks ({est.n_resamples} resamples, seed {seed}) and sign-flip test")
        out.append(MetricComparison(
            metric=name, test=test, n_pairs=n, n_tasks=pairs.n_tasks, seeds_per_task=pairs.seeds_per_task,
            base_rate=_points(sum(b for _, b, _ in pairs.triples) / n) if n else 0.0,
            new_rate=_points(sum(x for _, _, x in pairs.triples) / n) if n else 0.0,
            base_only=sum(b > x for _, b, x in pairs.triples),
            new_only=sum(x > b for _, b, x in pairs.triples),
            delta=_points(est.delta), ci=ci, lower_bound_holm=lower, holm_level=levels[i],
            p_value=p_diff[i], p_adjusted=adj_diff[i], p_noninferiority=p_ni[i],
            p_noninferiority_adjusted=adj_ni[i], verdict=verdict, needed=needed,
            unpaired=pairs.unpaired, env_errors=pairs.env_errors,
        ))
    return out


def compare(base_path: Path, new_path: Path, *, margin: float = 2.0, alpha: float = 0.05,
            seed: int = 0, progress: bool = False, cell: str | None = None) -> Comparison:
    """``progress``: also gate each env's progress rate (paired per episode, bootstrap over tasks),
    which still moves where success rates sit at 0 (small models on hard envs). ``cell``: gate
    one start of two rl-compat results (``il``, ``il/before``; default: the top-level envs)."""
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be in (0, 1), got {alpha}")
    if not 0 <= margin < 100:
        raise UsageError(f"--margin is in points and must be in [0, 100), got {margin}")
    if cell is not None:
        parse_cell(cell)
    base, new = load_side(base_path, cell), load_side(new_path, cell)
    check_comparable(base.result, new.result)
    notes: list[str] = []
    if cell is not None:
        start, phase = parse_cell(cell)
        cell = f"{start}/{phase}"
        check_comparable_envs(base.result, new.result, cell)
    named: list[tuple[str, Pairs]] = []
    for env in sorted(base.result.envs, key=lambda e: (e.name, e.split)):
        a, b = ([r for r in side.episodes if r.env == env.name and r.split == env.split] for side in (base, new))
        for side, records in (("BASE", a), ("NEW", b)):
            if not records:
                raise CorruptFileError(f"{side}'s episodes.jsonl has no episodes of {env.name}/{env.split}")
        pairs = pair_episodes(a, b)
        name = f"{env.name}/{env.split}"
        if pairs.unpaired:
            notes.append(f"{name}: {pairs.unpaired} episode(s) in only one result, left out")
        if pairs.env_errors:
            notes.append(f"{name}: {pairs.env_errors} pair(s) with an env error, left out")
        named.append((name, pairs))
        if progress:
            named.append((f"{name}/progress", progress_pairs(pairs, a, b)))
    for side in (base, new):
        if side.result.status != "complete":
            notes.append(f"{side.path} has status {side.result.status}: only its finished episodes are compared")
    named.extend(_forgetting_metric(base, new, notes))
    metrics = compare_pairs(named, margin=margin, alpha=alpha, seed=seed)
    for metric in metrics:
        if not metric.n_pairs:
            notes.append(f"{metric.metric}: no paired episodes, so nothing could be shown (inconclusive)")
    verdict = overall([m.verdict for m in metrics])
    return Comparison(base=base.ref, new=new.ref, comparability_key=base.result.comparability_key, margin=margin,
                      alpha=alpha, seed=seed, power=POWER, rule=RULE, metrics=metrics, notes=notes,
                      verdict=verdict, exit_code=EXIT_CODES[verdict], cell=cell)


def _env_entries(result: RunResult) -> list[dict[str, Any]]:
    return sorted(({"name": e.name, "version": e.version, "split": e.split, "task_set_sha256": e.task_set_sha256,
                    "seeds": e.seeds, "max_turns": e.max_turns} for e in result.envs),
                  key=lambda d: (d["name"], d["split"]))


def check_comparable_envs(base: RunResult, new: RunResult, cell: str) -> None:
    """A cell's evaluations must match too (the comparability record covers the headline's)."""
    a, b = _env_entries(base), _env_entries(new)
    if a != b:
        diffs = comparability_differences({"envs": a}, {"envs": b})
        raise NotComparableError(f"BASE and NEW are not comparable at cell {cell}: "
                                 + (", ".join(diffs) + " differ" if diffs else "their evaluations differ"))


def _forgetting_metric(base: Side, new: Side, notes: list[str]) -> list[tuple[str, Pairs]]:
    have = [s.forgetting is not None for s in (base, new)]
    if not any(have):
        return []
    if not all(have):
        only = "BASE" if have[0] else "NEW"
        notes.append(f"forgetting: only {only} has {FORGETTING_FILE}; left out of the comparison")
        return []
    fa, fb = base.result.forgetting, new.result.forgetting
    if fa is not None and fb is not None and fa.dataset_sha256 != fb.dataset_sha256:
        notes.append("forgetting: the two checks used different prompt files (dataset_sha256); left out")
        return []
    pairs = pair_forgetting(base.forgetting or [], new.forgetting or [])
    if pairs.unpaired:
        notes.append(f"forgetting: {pairs.unpaired} prompt(s) in only one result, left out")
    return [(FORGETTING_METRIC, pairs)]


def write_comparison(comparison: Comparison, path: Path) -> None:
    atomic_write_text(path, comparison.model_dump_json(indent=2) + "\n")
