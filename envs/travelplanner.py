"""TravelPlanner (Xie et al. 2024), sole-planning mode: an adapter.

The user gives the data (none ships or downloads here): ``--set data_dir=DIR`` with the Hugging Face
dataset ``osunlp/TravelPlanner`` exported split by split, ``DIR/train.csv`` and ``DIR/validation.csv``
(or ``.jsonl``; ``datasets``' ``to_csv`` / ``to_json`` of each config). A row has ``org``, ``dest``,
``days``, ``visiting_city_number``, ``date``, ``people_number``, ``local_constraint`` (a Python-literal
dict: ``house rule``, ``cuisine``, ``room type``, ``transportation``), ``budget``, ``query``, ``level``,
``reference_information`` (a Python-literal list of ``{"Description", "Content"}``: the records the
benchmark collected for the query, each ``Content`` a pandas ``to_string`` table or a one-line
distance result) and, in train, ``annotated_plan``. Splits: ``train`` (45 queries with plans),
``test``: the validation split (180 queries; the official test split has no constraint fields and is
scored only on the leaderboard), no ``ood``.

One task is one query. The observation is the query and the reference information; the agent answers
``submit[PLAN]``, PLAN a JSON list with one object per day (``day``, ``current_city``,
``transportation``, ``breakfast``, ``attraction``, ``lunch``, ``dinner``, ``accommodation``, entities
written ``Name, City``, ``-`` where nothing applies), which ends the episode. The plan is scored with
the benchmark's constraints, written here from the paper's definitions (see :func:`evaluate_plan`):
delivery, the 8 commonsense constraints, the hard constraints (budget and the query's local ones);
``StepInfo.extra`` holds each verdict and the micro counts, success is the final pass (every
constraint). The expert submits the annotated plan (train only). Checked only on made data in the
official schema.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
import sys
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.env import (
    AdapterEnv,
    Availability,
    EnvConfig,
    ExpertStep,
    NoExpert,
    Split,
    Step,
    StepInfo,
    Task,
)
from agentbench.errors import ConfigError

PLAN_KEYS = ("current_city", "transportation", "breakfast", "attraction", "lunch", "dinner", "accommodation")
COMMONSENSE = ("within_sandbox", "complete_information", "within_current_city", "reasonable_city_route",
               "diverse_restaurants", "diverse_attractions", "non_conflicting_transportation",
               "minimum_nights_stay")
HARD = ("budget", "room_rule", "room_type", "cuisine", "transportation")
_LOCAL_KEY = {"room_rule": "house rule", "room_type": "room type", "cuisine": "cuisine",
              "transportation": "transportation"}
_MULTIWORD = ("Flight Number", "Average Cost", "Aggregate Rating", "room type", "minimum nights",
              "maximum occupancy", "review rate number")
_FROM_TO = re.compile(r"from\s+(.+?)\s+to\s+([^,]+)", re.IGNORECASE)
_SUBMIT = re.compile(r"^submit\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_NONE = ("", "-")


class TravelPlannerConfig(EnvConfig):
    data_dir: str | None = Field(None, description="folder with osunlp/TravelPlanner exported: train.csv|jsonl, "
                                                   "validation.csv|jsonl")
    test_split: str = Field("validation", description="the file read as the test split (the official test "
                                                      "split has no constraint fields)")
    reference: Literal["compact", "raw"] = Field("compact", description="compact: one line per record; "
                                                                        "raw: the dataset's text")
    max_reference_chars: int | None = Field(None, ge=1000, description="cut the reference information here")
    max_tasks: int | None = Field(None, ge=1, description="at most this many tasks per split")


# --- reading the dataset -------------------------------------------------------------------------------


def _literal(value: Any) -> Any:
    """A field the CSV export holds as Python-literal text, parsed without evaluating code."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        try:
            return json.loads(text)
        except ValueError:
            return value


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _number(value: Any) -> float:
    try:
        return float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        return math.nan


def query_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The query fields of a dataset row, typed (ints, the local constraints as a dict)."""
    local = _literal(row.get("local_constraint")) or {}
    if not isinstance(local, dict):
        raise ConfigError(f"travelplanner: local_constraint is not a dict: {str(row.get('local_constraint'))[:80]}")
    date = _literal(row.get("date"))
    return {"org": str(row["org"]).strip(), "dest": str(row["dest"]).strip(), "days": int(_number(row["days"])),
            "visiting_city_number": int(_number(row["visiting_city_number"])),
            "date": list(date) if isinstance(date, (list, tuple)) else date,
            "people_number": int(_number(row["people_number"])), "budget": _number(row["budget"]),
            "local_constraint": {k: local.get(k) for k in ("house rule", "cuisine", "room type", "transportation")},
            "query": str(row.get("query", "")), "level": str(row.get("level", ""))}


def plan_days(plan: Any) -> list[dict[str, Any]] | None:
    """The day objects of a plan in any of the benchmark's shapes: a list of days, ``{"plan": [...]}``,
    or the annotated ``[query, [days...]]`` / ``[query, day, day, ...]``. None: no day found."""
    if isinstance(plan, str):
        plan = _literal(plan)
    if isinstance(plan, dict):
        plan = plan.get("plan", [plan])
    if not isinstance(plan, (list, tuple)):
        return None
    days: list[dict[str, Any]] = []
    for item in plan:
        if isinstance(item, (list, tuple)):
            days += [d for d in item if isinstance(d, dict) and "current_city" in d]
        elif isinstance(item, dict) and "current_city" in item:
            days.append(item)
    return days or None


def _clean_day(day: dict[str, Any], number: int) -> dict[str, Any]:
    out: dict[str, Any] = {"day": number}
    for key in PLAN_KEYS:
        if key in day:
            value = day[key]
            out[key] = "-" if value is None else str(value).strip()
    return out


# --- the sandbox: the reference information as records --------------------------------------------------


def _before_paren(text: str) -> str:
    return text.split("(", 1)[0].strip()


def _table(text: str) -> list[dict[str, str]]:
    """Records of a pandas ``to_string`` table: columns are right-aligned, so each one ends where its
    label ends; labels are single words or the benchmark's known multi-word ones."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    header = lines[0]
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", header)]
    columns: list[tuple[int, str]] = []  # (end, label)
    i = 0
    while i < len(tokens):
        for label in sorted(_MULTIWORD, key=len, reverse=True):
            words = label.split()
            span = tokens[i:i + len(words)]
            if [t[2] for t in span] == words and all(b[0] - a[1] == 1 for a, b in pairwise(span)):
                columns.append((span[-1][1], label))
                i += len(words)
                break
        else:
            columns.append((tokens[i][1], tokens[i][2]))
            i += 1
    rows = lines[1:]
    indexed = all(re.match(r"^\d+\s", r) for r in rows) and header[: len(rows[0].split()[0])].strip() == ""
    records = []
    for line in rows:
        record, start = {}, 0
        for end, label in columns:
            cell = line[start:end].strip()
            if start == 0 and indexed:
                cell = re.sub(r"^\d+\s+", "", cell)
            record[label], start = cell, end
        records.append(record)
    return records


def _records(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [r for r in content if isinstance(r, dict)]
    if isinstance(content, dict):
        return [content]
    text = str(content or "")
    if "\n" not in text.strip():
        return []
    return _table(text)


@cache
def sandbox_from_reference(reference: str) -> dict[str, Any]:
    """Flights, restaurants, accommodations, attractions and distances of a query's reference
    information (the dataset's ``[{"Description", "Content"}]`` text, or a dict keyed by description)."""
    data = _literal(reference)
    if isinstance(data, dict):
        data = [{"Description": k, "Content": v} for k, v in data.items()]
    if not isinstance(data, list):
        raise ConfigError("travelplanner: reference_information is not a list of {Description, Content}")
    box: dict[str, Any] = {"flights": [], "restaurants": [], "accommodations": [], "attractions": [],
                           "distances": {}, "cities": set()}
    for entry in data:
        if not isinstance(entry, dict):
            continue
        desc = str(entry.get("Description", entry.get("Short Description", ""))).strip()
        content, low = entry.get("Content"), desc.lower()
        kind = next((k for k in ("attractions", "restaurants", "accommodations") if low.startswith(k + " in ")), None)
        if kind:
            city = desc.split(" in ", 1)[1].strip()
            box["cities"].add(_before_paren(city))
            for r in _records(content):
                name = str(r.get("Name", r.get("NAME", ""))).strip()
                rcity = _before_paren(str(r.get("City", r.get("city", city))))
                box[kind].append({**{k: str(v) for k, v in r.items()}, "_name": name, "_city": rcity})
        elif low.startswith("flight from"):
            box["flights"] += [{k: str(v) for k, v in r.items()} for r in _records(content)]
        elif low.startswith(("self-driving from", "taxi from")):
            mode = "self-driving" if low.startswith("self") else "taxi"
            text = str(content or "")
            pair = _FROM_TO.search(text) or _FROM_TO.search(desc)
            cost = re.search(r"cost:\s*([\d.,]+)", text)
            if pair and cost:
                key = (mode, _before_paren(pair.group(1)), _before_paren(pair.group(2)))
                box["distances"][key] = _number(cost.group(1))
    box["cities"] = frozenset(box["cities"])
    return box


def _split_entity(text: str) -> tuple[str, str]:
    """``Name, City`` -> (name, city); the city is after the last comma, without a ``(State)``."""
    if "," not in text:
        return text.strip(), ""
    name, city = text.rsplit(",", 1)
    return name.strip(), _before_paren(city)


def _find(records: list[dict[str, Any]], entity: str) -> dict[str, Any] | None:
    name, city = _split_entity(entity)
    if not name or not city:
        return None
    same_city = [r for r in records if r["_city"] == city]
    return (next((r for r in same_city if r["_name"] == name), None)
            or next((r for r in same_city if name in r["_name"]), None))


def _attractions(value: str) -> list[str]:
    return [a.strip() for a in value.split(";") if a.strip()]


def _mode(transportation: str) -> str | None:
    low = transportation.lower()
    if "flight" in low:
        return "flight"
    if "self-driving" in low:
        return "self-driving"
    if "taxi" in low:
        return "taxi"
    return None


def _day_cities(current_city: str) -> list[str]:
    match = _FROM_TO.search(current_city)
    if match:
        return [_before_paren(match.group(1)), _before_paren(match.group(2))]
    return [_before_paren(current_city)]


def _filled(value: Any) -> bool:
    return value is not None and str(value).strip() not in _NONE


# --- the constraints --------------------------------------------------------------------------------------


def _transport_record(box: dict[str, Any], day: dict[str, Any]) -> tuple[str | None, dict[str, Any] | float | None]:
    value = day.get("transportation", "")
    mode = _mode(value)
    pair = _FROM_TO.search(value) or _FROM_TO.search(day.get("current_city", ""))
    org = _before_paren(pair.group(1)) if pair else ""
    dest = _before_paren(pair.group(2)) if pair else ""
    if mode == "flight":
        number = re.search(r"flight number:\s*([A-Za-z0-9]+)", value, re.IGNORECASE)
        flight = next((f for f in box["flights"] if number and f.get("Flight Number") == number.group(1)
                       and _before_paren(f.get("OriginCityName", "")) == org
                       and _before_paren(f.get("DestCityName", "")) == dest), None)
        return mode, flight
    if mode in ("self-driving", "taxi"):
        return mode, box["distances"].get((mode, org, dest))
    return mode, None


def _within_sandbox(box: dict[str, Any], days: list[dict[str, Any]]) -> tuple[bool, str]:
    for i, day in enumerate(days, 1):
        if _filled(day.get("transportation")):
            mode, record = _transport_record(box, day)
            if record is None:
                return False, f"day {i}: transportation {mode or 'unknown'} not in the reference information"
        for meal in ("breakfast", "lunch", "dinner"):
            if _filled(day.get(meal)) and _find(box["restaurants"], day[meal]) is None:
                return False, f"day {i}: {meal} {day[meal]!r} not in the reference information"
        for attraction in _attractions(day.get("attraction", "")) if _filled(day.get("attraction")) else []:
            if _find(box["attractions"], attraction) is None:
                return False, f"day {i}: attraction {attraction!r} not in the reference information"
        if _filled(day.get("accommodation")) and _find(box["accommodations"], day["accommodation"]) is None:
            return False, f"day {i}: accommodation {day['accommodation']!r} not in the reference information"
    return True, ""


def _visited(query: dict[str, Any], days: list[dict[str, Any]]) -> set[str]:
    cities = {c for day in days for c in _day_cities(day.get("current_city", ""))}
    cities.discard(query["org"])
    return cities


def _complete(query: dict[str, Any], days: list[dict[str, Any]]) -> tuple[bool, str]:
    if len(days) != query["days"]:
        return False, f"{len(days)} days planned, the query has {query['days']}"
    if len(_visited(query, days)) != query["visiting_city_number"]:
        return False, f"the query visits {query['visiting_city_number']} cities"
    filled = 0
    for i, day in enumerate(days, 1):
        missing = [k for k in PLAN_KEYS if k not in day]
        if missing:
            return False, f"day {i} has no {missing[0]}"
        travel = _FROM_TO.search(day["current_city"]) is not None
        if travel and not _filled(day["transportation"]):
            return False, f"day {i} changes city without transportation"
        if not travel and not _filled(day["attraction"]):
            return False, f"day {i} has no attraction"
        if i != len(days) and not _filled(day["accommodation"]):
            return False, f"day {i} has no accommodation"
        if not travel and not all(_filled(day[m]) for m in ("breakfast", "lunch", "dinner")):
            return False, f"day {i} misses a meal"
        filled += sum(_filled(day[k]) for k in PLAN_KEYS if k != "current_city")
    if filled < 0.5 * 6 * len(days):
        return False, "more than half of the information is absent"
    return True, ""


def _in_city(days: list[dict[str, Any]]) -> tuple[bool, str]:
    for i, day in enumerate(days, 1):
        cities = _day_cities(day.get("current_city", ""))
        if _filled(day.get("transportation")) and not all(c in day["transportation"] for c in cities):
            return False, f"day {i}: the transportation does not join {' and '.join(cities)}"
        items = [day.get(m) for m in ("breakfast", "lunch", "dinner")]
        items += _attractions(day.get("attraction", "")) if _filled(day.get("attraction")) else []
        for item in items:
            if _filled(item) and _split_entity(item)[1] not in cities:
                return False, f"day {i}: {item!r} is not in {' or '.join(cities)}"
        if _filled(day.get("accommodation")) and _split_entity(day["accommodation"])[1] != cities[-1]:
            return False, f"day {i}: the accommodation is not in {cities[-1]}"
    return True, ""


def _route(query: dict[str, Any], box: dict[str, Any], days: list[dict[str, Any]]) -> tuple[bool, str]:
    route: list[str] = []
    for day in days:
        route += _day_cities(day.get("current_city", ""))
    if not route or route[0] != query["org"]:
        return False, f"the trip does not start from {query['org']}"
    if route[-1] != route[0]:
        return False, "the trip does not return to where it started"
    runs: list[tuple[str, int]] = []
    for city in route:
        if runs and runs[-1][0] == city:
            runs[-1] = (city, runs[-1][1] + 1)
        else:
            runs.append((city, 1))
    middle = runs[1:-1]
    if len(runs) < 3 or any(n < 2 for _, n in middle):
        return False, "a visited city gets no stay"
    names = [c for c, _ in middle]
    if len(set(names)) != len(names) or query["org"] in names:
        return False, "a city is visited twice"
    outside = [c for c in names if c not in box["cities"]]
    if outside:
        return False, f"{outside[0]} is not a city of the reference information"
    return True, ""


def _diverse(days: list[dict[str, Any]], keys: tuple[str, ...]) -> tuple[bool, str]:
    seen: set[str] = set()
    for i, day in enumerate(days, 1):
        for key in keys:
            if not _filled(day.get(key)):
                continue
            for item in _attractions(day[key]) if key == "attraction" else [day[key].strip()]:
                if item in seen:
                    return False, f"day {i}: {item!r} repeated"
                seen.add(item)
    return True, ""


def _non_conflicting(days: list[dict[str, Any]]) -> tuple[bool, str]:
    modes = {_mode(d["transportation"]) for d in days if _filled(d.get("transportation"))}
    if not days or not _filled(days[0].get("transportation")):
        return False, "no transportation on day 1"
    if "self-driving" in modes and ({"flight", "taxi"} & modes):
        return False, f"self-driving together with {sorted({'flight', 'taxi'} & modes)[0]}"
    return True, ""


def _minimum_nights(box: dict[str, Any], days: list[dict[str, Any]]) -> tuple[bool, str]:
    runs: list[list[Any]] = []
    for day in days:
        value = str(day.get("accommodation", "-")).strip()
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    for value, nights in runs:
        record = _find(box["accommodations"], value) if _filled(value) else None
        if record is not None and nights < _number(record.get("minimum nights", 1)):
            return False, f"{value!r} needs {record.get('minimum nights')} nights, {nights} planned"
    return True, ""


def total_cost(query: dict[str, Any], box: dict[str, Any], days: list[dict[str, Any]]) -> float:
    """The plan's cost for the whole party: flights per person, self-driving per car of 5, taxis per
    car of 4, meals per person, rooms by the occupancy they need."""
    people, cost = query["people_number"], 0.0
    for day in days:
        if _filled(day.get("transportation")):
            mode, record = _transport_record(box, day)
            if mode == "flight" and isinstance(record, dict):
                cost += _number(record.get("Price")) * people
            elif mode == "self-driving" and isinstance(record, float):
                cost += record * math.ceil(people / 5)
            elif mode == "taxi" and isinstance(record, float):
                cost += record * math.ceil(people / 4)
        for meal in ("breakfast", "lunch", "dinner"):
            record = _find(box["restaurants"], day[meal]) if _filled(day.get(meal)) else None
            if record is not None:
                cost += _number(record.get("Average Cost")) * people
        record = _find(box["accommodations"], day["accommodation"]) if _filled(day.get("accommodation")) else None
        if record is not None:
            cost += _number(record.get("price")) * math.ceil(people / max(1.0, _number(record.get("maximum occupancy"))))
    return cost


_RULES = {"smoking": "No smoking", "parties": "No parties", "parities": "No parties",
          "children under 10": "No children under 10", "visitors": "No visitors", "pets": "No pets"}
_ROOM = {"shared room": lambda t: t == "Shared room", "not shared room": lambda t: t != "Shared room",
         "private room": lambda t: t == "Private room", "entire room": lambda t: t == "Entire home/apt"}


def _hard(query: dict[str, Any], box: dict[str, Any], days: list[dict[str, Any]]) -> dict[str, tuple[bool | None, str]]:
    local = query["local_constraint"]
    stays = [r for d in days if _filled(d.get("accommodation"))
             if (r := _find(box["accommodations"], d["accommodation"])) is not None]
    out: dict[str, tuple[bool | None, str]] = {}
    cost = total_cost(query, box, days)
    out["budget"] = (cost <= query["budget"], f"cost {cost:g} of budget {query['budget']:g}")
    rule = local.get("house rule")
    if rule:
        banned = _RULES.get(str(rule).lower(), f"No {rule}")
        bad = next((r["_name"] for r in stays if banned in r.get("house_rules", "")), None)
        out["room_rule"] = (bad is None, f"{bad!r} says {banned}" if bad else "")
    room = local.get("room type")
    if room:
        accept = _ROOM.get(str(room).lower(), lambda t: True)
        bad = next((r["_name"] for r in stays if not accept(r.get("room type", ""))), None)
        out["room_type"] = (bad is None, f"{bad!r} is not a {room}" if bad else "")
    cuisines = local.get("cuisine")
    if cuisines:
        wanted = [cuisines] if isinstance(cuisines, str) else list(cuisines)
        served: set[str] = set()
        for day in days:
            for meal in ("breakfast", "lunch", "dinner"):
                if not _filled(day.get(meal)) or _split_entity(day[meal])[1] == query["org"]:
                    continue
                record = _find(box["restaurants"], day[meal])
                if record is not None:
                    served |= {c for c in wanted if c in record.get("Cuisines", "")}
        missing = [c for c in wanted if c not in served]
        out["cuisine"] = (not missing, f"no {missing[0]} restaurant" if missing else "")
    transport = local.get("transportation")
    if transport:
        banned_mode = str(transport).lower().removeprefix("no ").strip()
        bad = next((i for i, d in enumerate(days, 1)
                    if _filled(d.get("transportation")) and _mode(d["transportation"]) == banned_mode), None)
        out["transportation"] = (bad is None, f"day {bad} uses {banned_mode}" if bad else "")
    return out


def evaluate_plan(query: dict[str, Any], reference: str, plan: Any) -> dict[str, Any]:
    """The benchmark's verdicts on one plan (the paper's definitions; see the README for where the
    official evaluation's details were followed). Keys: ``delivered``; ``commonsense`` and ``hard``
    (constraint -> True/False, hard only for the constraints the query has); ``reasons``; the micro
    counts ``commonsense_passed``/``commonsense_total``, ``hard_passed``/``hard_total``; the macro
    verdicts ``commonsense_pass``, ``hard_pass``; ``final_pass``; ``cost``. Hard constraints are
    judged only for a complete plan within the sandbox (else all fail), as the benchmark does."""
    box = sandbox_from_reference(reference)
    raw = plan_days(plan)
    hard_names = ["budget"] + [k for k in HARD[1:] if query["local_constraint"].get(_LOCAL_KEY[k])]
    result: dict[str, Any] = {"delivered": raw is not None, "reasons": {}, "cost": None}
    if raw is None:
        result["commonsense"] = dict.fromkeys(COMMONSENSE, False)
        result["hard"] = dict.fromkeys(hard_names, False)
        result["reasons"]["delivered"] = "no plan"
    else:
        days = [_clean_day(d, i) for i, d in enumerate(raw[: query["days"]], 1)]
        checks = {"within_sandbox": _within_sandbox(box, days), "complete_information": _complete(query, days),
                  "within_current_city": _in_city(days), "reasonable_city_route": _route(query, box, days),
                  "diverse_restaurants": _diverse(days, ("breakfast", "lunch", "dinner")),
                  "diverse_attractions": _diverse(days, ("attraction",)),
                  "non_conflicting_transportation": _non_conflicting(days),
                  "minimum_nights_stay": _minimum_nights(box, days)}
        result["commonsense"] = {k: v[0] for k, v in checks.items()}
        result["reasons"].update({k: v[1] for k, v in checks.items() if not v[0]})
        if checks["within_sandbox"][0] and checks["complete_information"][0]:
            hard = _hard(query, box, days)
            result["hard"] = {k: bool(v[0]) for k, v in hard.items()}
            result["reasons"].update({k: v[1] for k, v in hard.items() if not v[0]})
            result["cost"] = total_cost(query, box, days)
        else:
            result["hard"] = dict.fromkeys(hard_names, False)
            result["reasons"]["hard"] = "not judged: the plan is incomplete or leaves the sandbox"
    result["commonsense_passed"] = sum(result["commonsense"].values())
    result["commonsense_total"] = len(COMMONSENSE)
    result["hard_passed"] = sum(result["hard"].values())
    result["hard_total"] = len(result["hard"])
    result["commonsense_pass"] = result["delivered"] and all(result["commonsense"].values())
    result["hard_pass"] = result["delivered"] and all(result["hard"].values())
    result["final_pass"] = result["commonsense_pass"] and result["hard_pass"]
    return result


# --- the env ---------------------------------------------------------------------------------------------


def _compact(box: dict[str, Any]) -> str:
    lines = ["Flights:"]
    lines += [f"- Flight Number: {f.get('Flight Number')}, from {f.get('OriginCityName')} to {f.get('DestCityName')}, "
              f"Departure Time: {f.get('DepTime')}, Arrival Time: {f.get('ArrTime')}, price {f.get('Price')}"
              for f in box["flights"]] or ["- none"]
    lines.append("Self-driving and taxi:")
    lines += [f"- {mode}, from {a} to {b}, cost {cost:g}" for (mode, a, b), cost in box["distances"].items()] or ["- none"]
    lines.append("Restaurants (cost per person):")
    lines += [f"- {r['_name']}, {r['_city']}: cost {r.get('Average Cost')}, cuisines {r.get('Cuisines')}"
              for r in box["restaurants"]] or ["- none"]
    lines.append("Attractions:")
    lines += [f"- {r['_name']}, {r['_city']}" for r in box["attractions"]] or ["- none"]
    lines.append("Accommodations (price per night):")
    lines += [f"- {r['_name']}, {r['_city']}: price {r.get('price')}, {r.get('room type')}, "
              f"rules {r.get('house_rules')}, minimum nights {r.get('minimum nights')}, "
              f"maximum occupancy {r.get('maximum occupancy')}" for r in box["accommodations"]] or ["- none"]
    return "\n".join(lines)


class TravelPlanner(AdapterEnv):
    name: ClassVar[str] = "travelplanner"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("TravelPlanner sole-planning (Xie et al. 2024): submit a day-by-day plan from the "
                                  "reference information, scored by its commonsense and hard constraints; "
                                  "adapter, needs data_dir")
    Config = TravelPlannerConfig
    default_max_turns: ClassVar[int] = 3
    default_history_turns: ClassVar[int | None] = None
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: TravelPlannerConfig | None = None):
        super().__init__(config)
        self.config: TravelPlannerConfig
        self._ep: dict[str, Any] | None = None

    @classmethod
    def availability_for(cls, config: EnvConfig) -> Availability:
        c = TravelPlannerConfig.model_validate(config.model_dump())
        if not c.data_dir:
            return Availability(False, "adapter without data here: --set data_dir=DIR with the Hugging Face dataset "
                                       "osunlp/TravelPlanner exported as DIR/train.csv and DIR/validation.csv "
                                       "(or .jsonl), e.g. load_dataset('osunlp/TravelPlanner', 'train')['train']"
                                       ".to_csv('DIR/train.csv'); no extra package")
        root = Path(c.data_dir)
        missing = [s for s in ("train", c.test_split) if _split_file(root, s) is None]
        if missing:
            return Availability(False, f"no {missing[0]}.csv or {missing[0]}.jsonl in {root}")
        return Availability(True, f"data in {root}")

    @property
    def instructions(self) -> str:
        return ("Plan the trip the query asks for, using only the reference information. Reply with one action, "
                "submit[PLAN], where PLAN is a JSON list with one object per day: {\"day\": 1, \"current_city\": "
                "\"from A to B\" on a travel day or \"B\", \"transportation\": \"Flight Number: F123, from A to B\" "
                "or \"Self-driving, from A to B\" or \"Taxi, from A to B\", \"breakfast\", \"attraction\" "
                "(\"Name, City;Name, City;\"), \"lunch\", \"dinner\", \"accommodation\"}; write places as "
                "\"Name, City\" and \"-\" where nothing applies. The trip starts and ends at the origin; meals, "
                "attractions and stays must be in the day's city, none repeated; stay at least each "
                "accommodation's minimum nights; keep to the budget and the query's requirements. "
                "Submitting ends the episode.")

    def tasks(self, split: Split) -> list[Task]:
        c = self.config
        if split == "ood":
            return []
        name = "train" if split == "train" else c.test_split
        path = _split_file(Path(str(c.data_dir)), name)
        if path is None:
            return []
        out = []
        for i, row in enumerate(_rows(path)[: c.max_tasks], 1):
            spec = {"split_file": name, "number": i, "query": query_from_row(row),
                    "reference_information": str(row.get("reference_information") or "")}
            days = plan_days(row.get("annotated_plan")) if row.get("annotated_plan") else None
            if days:
                spec["annotated_plan"] = [_clean_day(d, n) for n, d in enumerate(days, 1)]
            out.append(Task(f"{name}-{i}", split, spec))
        return out

    def parse_action(self, response: str) -> str | None:
        """``submit[...]`` spans lines (a JSON plan); otherwise the ReAct ``Action:`` line."""
        start = response.lower().rfind("submit[")
        end = response.rfind("]")
        if start >= 0 and end > start:
            return response[start:end + 1]
        return super().parse_action(response)

    def reset(self, task: Task, seed: int = 0) -> str:
        if "query" not in task.spec:
            raise ConfigError(f"travelplanner: task {task.id} has no query")
        self._ep = {"spec": task.spec, "done": False}
        return f"Query: {task.spec['query']['query']}\n\nReference information:\n{self._reference(task.spec)}"

    def _reference(self, spec: dict[str, Any]) -> str:
        raw = spec["reference_information"]
        text = raw if self.config.reference == "raw" else _compact(sandbox_from_reference(raw))
        limit = self.config.max_reference_chars
        return text if limit is None or len(text) <= limit else text[:limit] + "\n[cut]"

    def step(self, action: str) -> Step:
        ep = self._require()
        if ep["done"]:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False))
        match = _SUBMIT.match(action.strip())
        if not match:
            return Step("Invalid action: reply with submit[PLAN], PLAN a JSON list of day objects.", 0.0, False,
                        StepInfo(valid=False))
        ep["done"] = True
        plan = _parse_plan(match.group(1))
        spec = ep["spec"]
        result = evaluate_plan(spec["query"], spec["reference_information"], plan)
        applicable = result["commonsense_total"] + result["hard_total"]
        progress = (result["commonsense_passed"] + result["hard_passed"]) / applicable
        failed = [k for k, v in {**result["commonsense"], **result["hard"]}.items() if not v]
        if not result["delivered"]:
            text = "No plan could be read from your submission."
        elif result["final_pass"]:
            text = "Your plan meets every constraint."
        else:
            text = "Your plan fails: " + ", ".join(failed) + "."
        return Step(text, float(result["final_pass"]), True,
                    StepInfo(success=result["final_pass"], progress=progress, extra=result))

    def expert_step(self) -> ExpertStep:
        ep = self._require()
        if ep["done"]:
            raise NoExpert("the episode is over")
        plan = ep["spec"].get("annotated_plan")
        if not plan:
            raise NoExpert("this split has no annotated plan")
        return ExpertStep(f"submit[{json.dumps(plan, ensure_ascii=False)}]", "the annotated plan")

    def snapshot(self) -> dict[str, Any]:
        return dict(self._require())

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._ep = dict(snapshot)

    def _require(self) -> dict[str, Any]:
        if self._ep is None:
            raise RuntimeError("call reset(task) before step()")
        return self._ep


def _split_file(root: Path, name: str) -> Path | None:
    return next((root / f"{name}{ext}" for ext in (".csv", ".jsonl", ".json") if (root / f"{name}{ext}").exists()),
                None)


def _parse_plan(text: str) -> Any:
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```\w*\s*|\s*```$", "", text)
    try:
        return json.loads(text)
    except ValueError:
        value = _literal(text)
        return None if isinstance(value, str) else value
