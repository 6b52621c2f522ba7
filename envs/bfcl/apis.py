"""The simulated APIs of one entry, and the only way calls reach them.

Instances are built as BFCL's executor builds them: one per involved class, loaded with a deep
copy of the entry's ``initial_config`` (stateless ``MathAPI`` is not loaded), ``long_context``
for that category. Each instance is then deep-copied once more, because ``TravelAPI`` merges
module-level dicts into its state by reference in long-context mode and would otherwise carry
one episode's changes into the next.

A call is dispatched only when its name is one of the functions available at this turn (the
entry's doc names minus excluded and not-yet-added ones, all of which are public methods of the
involved classes) and its arguments bind to the method's signature; otherwise it is refused
before anything runs. Results are turned into strings as BFCL's executor does (``str`` kept,
``dict`` as JSON, anything else ``str()``; an exception becomes ``Error during execution: ...``),
so the official response check compares the same strings.
"""

from __future__ import annotations

import copy
import decimal
import importlib
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from agentbench.envs.bfcl.calls import Call, parse_calls
from agentbench.envs.bfcl.data import Entry, function_docs
from agentbench.extras import require_extra

_BACKEND = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
_MODULES = {
    "GorillaFileSystem": "gorilla_file_system", "MathAPI": "math_api", "MessageAPI": "message_api",
    "TwitterAPI": "posting_api", "TicketAPI": "ticket_api", "TradingBot": "trading_bot",
    "TravelAPI": "travel_booking", "VehicleControlAPI": "vehicle_control",
}
_STATELESS = frozenset({"MathAPI"})
MAX_PRECISION = 1000
MAX_POWER_BITS = 100_000


class RefusedCall(ValueError):
    """A call that is not dispatched: unknown or unavailable function, bad arguments, too costly."""


@dataclass(frozen=True)
class PreparedCall:
    """A call checked against the instances: the bound method and its canonical text."""

    text: str
    method: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@cache
def api_class(class_name: str) -> type:
    if class_name not in _MODULES:
        raise KeyError(f"unknown BFCL API class {class_name!r}")
    return getattr(importlib.import_module(f"{_BACKEND}.{_MODULES[class_name]}"), class_name)


@cache
def _signature(class_name: str, method: str) -> inspect.Signature:
    parameters = list(inspect.signature(getattr(api_class(class_name), method)).parameters.values())
    return inspect.Signature(parameters[1:])  # without self


class ApiSession:
    """The live API instances of one episode (the agent's, or the ground truth's)."""

    def __init__(self, entry: Entry):
        self.instances: dict[str, Any] = {}
        for class_name in entry.involved_classes:
            instance = api_class(class_name)()
            if class_name not in _STATELESS:
                instance._load_scenario(copy.deepcopy(entry.initial_config.get(class_name, {})),
                                        long_context=entry.long_context)
            self.instances[class_name] = copy.deepcopy(instance)
        self.owner = {doc["name"]: c for c in entry.involved_classes for doc in function_docs(c)}

    def prepare(self, calls: Sequence[Call], allowed: set[str]) -> list[PreparedCall]:
        """Every call checked (all of them before any runs); raises :class:`RefusedCall`."""
        prepared = []
        for call in calls:
            if call.name not in allowed or call.name not in self.owner:
                raise RefusedCall(f"{call.name} is not one of the available functions")
            class_name = self.owner[call.name]
            try:
                bound = _signature(class_name, call.name).bind(*call.args, **dict(call.kwargs))
            except TypeError as exc:
                raise RefusedCall(f"{call.name}: {exc}") from None
            problem = _too_costly(call.name, bound.arguments)
            if problem:
                raise RefusedCall(f"{call.name}: {problem}")
            method = getattr(self.instances[class_name], call.name)
            text = Call(call.name, (), tuple(bound.arguments.items())).text()
            prepared.append(PreparedCall(text, method, tuple(bound.args), dict(bound.kwargs)))
        return prepared

    def run(self, prepared: Sequence[PreparedCall]) -> list[str]:
        return [_execute(p) for p in prepared]

    def run_text(self, text: str, allowed: set[str]) -> tuple[list[str], list[str]]:
        """Parse, check and run call text (the ground truth's): (canonical calls, results)."""
        prepared = self.prepare(parse_calls(text), allowed)
        return [p.text for p in prepared], self.run(prepared)


def canonical(text: str, entry: Entry) -> list[str]:
    """The canonical text of the calls in ``text`` (keyword arguments, as the env shows them)."""
    out = []
    owner = {doc["name"]: c for c in entry.involved_classes for doc in function_docs(c)}
    for call in parse_calls(text):
        bound = _signature(owner[call.name], call.name).bind(*call.args, **dict(call.kwargs))
        out.append(Call(call.name, (), tuple(bound.arguments.items())).text())
    return out


def _execute(call: PreparedCall) -> str:
    mpmath = require_extra("mpmath", extra="bfcl", what="env bfcl")

    precision = mpmath.mp.dps
    try:
        # MathAPI sets the decimal and mpmath precision globally; keep that inside the call (and
        # turn the result into text before restoring: an mpf prints at the precision it was made).
        with decimal.localcontext():
            return _as_text(call.method(*call.args, **call.kwargs))
    except Exception as exc:
        return f"Error during execution: {exc}"
    finally:
        mpmath.mp.dps = precision


def _as_text(result: Any) -> str:
    if type(result) is str:
        return result
    if type(result) is dict:
        try:
            return json.dumps(result)
        except (TypeError, ValueError):
            return str(result)
    return str(result)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _too_costly(name: str, arguments: dict[str, Any]) -> str | None:
    """Arguments that would hang or exhaust memory in MathAPI (huge integer powers, precisions,
    decimal places); numbers of any type are checked (a float precision is still a precision)."""
    for key in ("precision", "decimal_places"):
        value = arguments.get(key)
        if _is_number(value) and not (math.isfinite(value) and abs(value) <= MAX_PRECISION):
            return f"{key} outside -{MAX_PRECISION}..{MAX_PRECISION} is refused"
    if name == "power":
        base, exponent = arguments.get("base"), arguments.get("exponent")
        # float powers are quick (or overflow at once); integer ones grow without bound
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
                and exponent * max(1, abs(base).bit_length()) > MAX_POWER_BITS:
            return "the result would be too large to compute"
    return None
