"""How numbers are written in every output format (one place, so the formats agree)."""

from __future__ import annotations

from agentbench.results import Rate, RunResult


def points(fraction: float) -> str:
    """A fraction as percentage points with one decimal, never '-0.0'."""
    text = f"{100 * fraction:.1f}"
    return "0.0" if text == "-0.0" else text


def signed_points(fraction: float) -> str:
    text = f"{100 * fraction:+.1f}"
    return "+0.0" if text == "-0.0" else text


def rate_value(rate: Rate) -> str:
    return points(rate.value)


def rate_interval(rate: Rate) -> str:
    lo, hi = rate.ci95
    return f"[{points(lo)}, {points(hi)}]"


def rate_text(rate: Rate) -> str:
    """Success in %, with its 95% interval: ``37.5 [13.7, 69.4]``."""
    return f"{rate_value(rate)} {rate_interval(rate)}"


def forgetting_text(result: RunResult) -> str | None:
    """Change of IF-Eval prompt-level strict accuracy in points, with the paired test's p-value and
    the answers' token limit (a cut answer can flip length instructions)."""
    f = result.forgetting
    if f is None:
        return None
    limit = ifeval_token_limit(f)
    return f"{signed_points(f.delta.prompt_level_strict)} (p={f.test.p_value:.3g}" + \
        (f", {limit} tok)" if limit else ")")


def ifeval_token_limit(forgetting) -> int | None:
    """The max_new_tokens of an IF-Eval check's answers, as its result records it."""
    value = (forgetting.extra or {}).get("generation", {}).get("max_new_tokens")
    return int(value) if isinstance(value, int) else None


def count(n: int) -> str:
    return f"{n:,}"


def axis_value(value: float | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def short(sha: str | None, n: int = 8) -> str:
    return (sha or "none")[:n]
