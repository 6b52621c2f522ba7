"""travelplanner adapter on made files in osunlp/TravelPlanner's schema (checked only on such data).

The made reference information follows the dataset's: a Python-literal list of
``{"Description", "Content"}``, each table in pandas' ``to_string(index=False)`` layout (columns
right-aligned), each distance a one-line result; one test parses pandas' own output.
"""

from __future__ import annotations

import copy
import csv
import json

import pytest

from agentbench import conformance
from agentbench.env import NoExpert
from agentbench.envs.travelplanner import (
    COMMONSENSE,
    TravelPlanner,
    _table,
    evaluate_plan,
    query_from_row,
    sandbox_from_reference,
)


def to_string(columns: list[str], rows: list[list[object]]) -> str:
    """pandas' ``DataFrame.to_string(index=False)`` layout: every column right-aligned to its widest cell."""
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(" ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)


FLIGHT_COLUMNS = ["Flight Number", "Price", "DepTime", "ArrTime", "ActualElapsedTime", "FlightDate",
                  "OriginCityName", "DestCityName", "Distance"]
RESTAURANTS = [  # Name, Average Cost, Cuisines, Aggregate Rating, City
    ["Wok House", 20, "Chinese, Tea", 4.1, "Chicago"],
    ["Deep Dish Co", 30, "Pizza, Italian", 4.5, "Chicago"],
    ["Morning Cafe", 15, "Cafe, Bakery", 3.9, "Chicago"],
    ["Taco Town", 18, "Mexican, Fast Food", 4.0, "Chicago"],
    ["Steak Place", 40, "American, BBQ", 4.3, "Chicago"],
    ["Bagel Spot", 10, "Bakery, Desserts", 3.5, "Chicago"],
    ["Burger Joint", 25, "American, Fast Food", 3.8, "Chicago"],
]
ACCOMMODATIONS = [  # NAME, price, room type, house_rules, minimum nights, maximum occupancy, review, city
    ["Loop Loft", 300.0, "Entire home/apt", "No parties", 2.0, 2, 4.0, "Chicago"],
    ["Lakeview Suite", 700.0, "Entire home/apt", "No pets", 1.0, 4, 5.0, "Chicago"],
    ["Shared Bunk", 50.0, "Shared room", "No visitors", 1.0, 1, 3.0, "Chicago"],
    ["Quiet Flat", 200.0, "Entire home/apt", "No smoking & No pets", 1.0, 2, 4.0, "Chicago"],
    ["Budget Studio", 100.0, "Entire home/apt", "No parties", 1.0, 2, 3.0, "Chicago"],
]
ATTRACTIONS = ["Millennium Park", "Art Institute of Chicago", "Navy Pier"]


def reference_information() -> str:
    flight_out = to_string(FLIGHT_COLUMNS, [["F0001", 200, "08:00", "10:30", "2 hours 30 minutes", "2022-03-22",
                                             "Sarasota", "Chicago", 1633.0]])
    flight_back = to_string(FLIGHT_COLUMNS, [["F0002", 180, "18:00", "22:10", "3 hours 10 minutes", "2022-03-24",
                                              "Chicago", "Sarasota", 1633.0]])
    entries = [
        {"Description": "Flight from Sarasota to Chicago on 2022-03-22", "Content": flight_out},
        {"Description": "Self-driving from Sarasota to Chicago",
         "Content": "self-driving, from Sarasota to Chicago, duration: 17 hours 5 mins, distance: 1,837 km, cost: 91"},
        {"Description": "Taxi from Sarasota to Chicago",
         "Content": "taxi, from Sarasota to Chicago, duration: 17 hours 5 mins, distance: 1,837 km, cost: 1837"},
        {"Description": "Attractions in Chicago",
         "Content": to_string(["Name", "Latitude", "Longitude", "Address", "Phone", "Website", "City"],
                              [[a, 41.88, -87.62, "1 Main St, Chicago, IL", "Unknown", "Unknown", "Chicago"]
                               for a in ATTRACTIONS])},
        {"Description": "Restaurants in Chicago",
         "Content": to_string(["Name", "Average Cost", "Cuisines", "Aggregate Rating", "City"], RESTAURANTS)},
        {"Description": "Accommodations in Chicago",
         "Content": to_string(["NAME", "price", "room type", "house_rules", "minimum nights", "maximum occupancy",
                               "review rate number", "city"], ACCOMMODATIONS)},
        {"Description": "Flight from Chicago to Sarasota on 2022-03-24", "Content": flight_back},
        {"Description": "Self-driving from Chicago to Sarasota",
         "Content": "self-driving, from Chicago to Sarasota, duration: 17 hours 5 mins, distance: 1,837 km, cost: 91"},
        {"Description": "Taxi from Chicago to Sarasota", "Content": "No valid information."},
    ]
    return repr(entries)


REFERENCE = reference_information()
LOCAL = {"house rule": "smoking", "cuisine": ["Chinese"], "room type": "entire room", "transportation": "no self-driving"}
ROW = {"org": "Sarasota", "dest": "Chicago", "days": "3", "visiting_city_number": "1",
       "date": repr(["2022-03-22", "2022-03-23", "2022-03-24"]), "people_number": "2",
       "local_constraint": repr(LOCAL), "budget": "1900",
       "query": "Plan a 3-day trip from Sarasota to Chicago for 2 people, March 22nd to 24th, 2022, budget $1,900.",
       "level": "hard", "reference_information": REFERENCE}
QUERY = query_from_row(ROW)

GOOD = [
    {"day": 1, "current_city": "from Sarasota to Chicago",
     "transportation": "Flight Number: F0001, from Sarasota to Chicago, Departure Time: 08:00, Arrival Time: 10:30",
     "breakfast": "-", "attraction": "Millennium Park, Chicago;", "lunch": "Wok House, Chicago",
     "dinner": "Deep Dish Co, Chicago", "accommodation": "Loop Loft, Chicago"},
    {"day": 2, "current_city": "Chicago", "transportation": "-", "breakfast": "Morning Cafe, Chicago",
     "attraction": "Art Institute of Chicago, Chicago;Navy Pier, Chicago;", "lunch": "Taco Town, Chicago",
     "dinner": "Steak Place, Chicago", "accommodation": "Loop Loft, Chicago"},
    {"day": 3, "current_city": "from Chicago to Sarasota",
     "transportation": "Flight Number: F0002, from Chicago to Sarasota, Departure Time: 18:00, Arrival Time: 22:10",
     "breakfast": "Bagel Spot, Chicago", "attraction": "-", "lunch": "-", "dinner": "-", "accommodation": "-"},
]


def variant(**changes: dict[str, str]) -> list[dict[str, object]]:
    """GOOD with fields changed, ``day2={"dinner": ...}``."""
    plan = copy.deepcopy(GOOD)
    for key, fields in changes.items():
        plan[int(key.removeprefix("day")) - 1].update(fields)
    return plan


ALL_PASS = dict.fromkeys(COMMONSENSE, True)
HARD_PASS = dict.fromkeys(("budget", "room_rule", "room_type", "cuisine", "transportation"), True)
HARD_UNJUDGED = dict.fromkeys(HARD_PASS, False)
SELF_DRIVE_OUT = {"transportation": "Self-driving, from Sarasota to Chicago, duration: 17 hours 5 mins, cost: 91"}
SELF_DRIVE_BACK = {"transportation": "Self-driving, from Chicago to Sarasota, duration: 17 hours 5 mins, cost: 91"}

CASES = {
    "correct": (GOOD, ALL_PASS, HARD_PASS),
    "budget exceeded": (variant(day1={"accommodation": "Lakeview Suite, Chicago"},
                                day2={"accommodation": "Lakeview Suite, Chicago"}),
                        ALL_PASS, {**HARD_PASS, "budget": False}),
    "entity not in sandbox": (variant(day2={"dinner": "Imaginary Bistro, Chicago"}),
                              {**ALL_PASS, "within_sandbox": False}, HARD_UNJUDGED),
    "wrong room type": (variant(day1={"accommodation": "Shared Bunk, Chicago"},
                                day2={"accommodation": "Shared Bunk, Chicago"}),
                        ALL_PASS, {**HARD_PASS, "room_type": False}),
    "missing day": (GOOD[:2], {**ALL_PASS, "complete_information": False, "reasonable_city_route": False},
                    HARD_UNJUDGED),
    "house rule broken": (variant(day1={"accommodation": "Quiet Flat, Chicago"},
                                  day2={"accommodation": "Quiet Flat, Chicago"}),
                          ALL_PASS, {**HARD_PASS, "room_rule": False}),
    "cuisine missing": (variant(day1={"lunch": "Burger Joint, Chicago"}), ALL_PASS, {**HARD_PASS, "cuisine": False}),
    "banned transportation": (variant(day1={**SELF_DRIVE_OUT}, day3={**SELF_DRIVE_BACK}),
                              ALL_PASS, {**HARD_PASS, "transportation": False}),
    "conflicting transportation": (variant(day3={**SELF_DRIVE_BACK}),
                                   {**ALL_PASS, "non_conflicting_transportation": False},
                                   {**HARD_PASS, "transportation": False}),
    "repeated restaurant": (variant(day2={"dinner": "Wok House, Chicago"}),
                            {**ALL_PASS, "diverse_restaurants": False}, HARD_PASS),
    "repeated attraction": (variant(day2={"attraction": "Millennium Park, Chicago;Navy Pier, Chicago;"}),
                            {**ALL_PASS, "diverse_attractions": False}, HARD_PASS),
    "minimum nights": (variant(day2={"accommodation": "Budget Studio, Chicago"}),
                       {**ALL_PASS, "minimum_nights_stay": False}, HARD_PASS),
    "wrong city": (variant(day2={"lunch": "Taco Town, Sarasota"}),
                   {**ALL_PASS, "within_sandbox": False, "within_current_city": False}, HARD_UNJUDGED),
}


@pytest.mark.parametrize("case", list(CASES))
def test_constraint_verdicts(case):
    plan, commonsense, hard = CASES[case]
    result = evaluate_plan(QUERY, REFERENCE, plan)
    assert result["delivered"]
    assert result["commonsense"] == commonsense, result["reasons"]
    assert result["hard"] == hard, result["reasons"]
    assert result["commonsense_passed"] == sum(commonsense.values()) and result["commonsense_total"] == 8
    assert result["hard_passed"] == sum(hard.values()) and result["hard_total"] == 5
    assert result["final_pass"] == (case == "correct")
    assert result["commonsense_pass"] == all(commonsense.values())
    assert result["hard_pass"] == all(hard.values())


def test_cost_follows_the_benchmark():
    # flights 2 x (200 + 180), meals 2 x (20+30+15+18+40+10), Loop Loft 2 nights x 1 room x 300
    assert evaluate_plan(QUERY, REFERENCE, GOOD)["cost"] == 760 + 266 + 600
    # Shared Bunk sleeps 1: two rooms a night; self-driving: one car of up to 5 each way
    assert evaluate_plan(QUERY, REFERENCE, CASES["wrong room type"][0])["cost"] == 760 + 266 + 2 * 2 * 50
    assert evaluate_plan(QUERY, REFERENCE, CASES["banned transportation"][0])["cost"] == 2 * 91 + 266 + 600


def test_not_delivered_and_budget_only_query():
    result = evaluate_plan(QUERY, REFERENCE, None)
    assert not result["delivered"] and not result["final_pass"]
    assert result["commonsense_passed"] == 0 and result["hard_passed"] == 0
    easy = {**QUERY, "local_constraint": dict.fromkeys(LOCAL)}
    result = evaluate_plan(easy, REFERENCE, CASES["wrong room type"][0])
    assert result["hard"] == {"budget": True} and result["final_pass"]


def test_sandbox_parses_the_official_reference_layout():
    box = sandbox_from_reference(REFERENCE)
    assert [f["Flight Number"] for f in box["flights"]] == ["F0001", "F0002"]
    assert box["distances"] == {("self-driving", "Sarasota", "Chicago"): 91.0, ("taxi", "Sarasota", "Chicago"): 1837.0,
                                ("self-driving", "Chicago", "Sarasota"): 91.0}
    wok = box["restaurants"][0]
    assert (wok["_name"], wok["Average Cost"], wok["Cuisines"]) == ("Wok House", "20", "Chinese, Tea")
    loft = box["accommodations"][0]
    assert (loft["_name"], loft["room type"], loft["house_rules"], loft["minimum nights"]) == (
        "Loop Loft", "Entire home/apt", "No parties", "2.0")
    assert [a["_name"] for a in box["attractions"]] == ATTRACTIONS and box["cities"] == {"Chicago"}


@pytest.mark.parametrize("index", [False, True])
def test_table_parser_reads_pandas_to_string(index):
    pd = pytest.importorskip("pandas")
    columns = ["NAME", "price", "room type", "house_rules", "minimum nights", "maximum occupancy",
               "review rate number", "city"]
    frame = pd.DataFrame(ACCOMMODATIONS, columns=columns, index=[1203, 7, 45, 99001, 3])
    records = _table(frame.to_string(index=index))
    assert [r["NAME"] for r in records] == [a[0] for a in ACCOMMODATIONS]
    assert [r["house_rules"] for r in records] == [a[3] for a in ACCOMMODATIONS]
    assert [float(r["price"]) for r in records] == [a[1] for a in ACCOMMODATIONS]


def _annotated(row: dict[str, str], plan: list[dict[str, object]]) -> str:
    """The train split's annotated_plan: the query, then the days (keyed ``days``), as a Python literal."""
    query = query_from_row(row)
    days = [{"days": d["day"], **{k: v for k, v in d.items() if k != "day"}} for d in plan]
    return repr([query, days])


@pytest.fixture
def data_dir(tmp_path):
    train = [{**ROW, "annotated_plan": _annotated(ROW, GOOD)},
             {**ROW, "budget": "5000", "local_constraint": repr(dict.fromkeys(LOCAL)), "level": "easy",
              "annotated_plan": _annotated(ROW, CASES["budget exceeded"][0])}]
    with (tmp_path / "train.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(train[0]))
        writer.writeheader()
        writer.writerows(train)
    (tmp_path / "validation.jsonl").write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "budget": "1000"}) + "\n")
    return tmp_path


def test_not_runnable_without_data(tmp_path):
    available = TravelPlanner.availability()
    assert not available.runnable and "data_dir" in available.detail and "osunlp/TravelPlanner" in available.detail
    missing = TravelPlanner.availability_for(TravelPlanner.Config(data_dir=str(tmp_path)))
    assert not missing.runnable and "train.csv" in missing.detail


def test_episode_scores_a_submitted_plan(data_dir):
    env = TravelPlanner.from_params({"data_dir": str(data_dir)})
    assert [len(env.tasks(s)) for s in ("train", "test", "ood")] == [2, 2, 0]
    task = env.tasks("test")[0]
    observation = env.reset(task)
    assert "Plan a 3-day trip" in observation and "Wok House, Chicago: cost 20" in observation
    assert "Flight Number: F0001" in observation
    step = env.step("plan it")
    assert not step.info.valid and not step.done
    step = env.step(f"submit[{json.dumps(GOOD)}]")
    assert step.done and step.reward == 1.0 and step.info.success and step.info.progress == 1.0
    assert step.info.extra["final_pass"] and step.info.extra["delivered"]
    env.reset(env.tasks("test")[1])  # budget 1000: the same plan costs 1626
    step = env.step(f"submit[{json.dumps({'plan': GOOD})}]")
    assert step.reward == 0.0 and not step.info.extra["hard"]["budget"] and "budget" in step.observation
    assert step.info.progress == 12 / 13
    env.reset(task)
    step = env.step("submit[day 1: fly to Chicago]")
    assert step.done and not step.info.extra["delivered"] and step.info.progress == 0.0
    raw = TravelPlanner.from_params({"data_dir": str(data_dir), "reference": "raw"})
    assert "Accommodations in Chicago" in raw.reset(task)


def test_parse_action_takes_a_multiline_plan():
    env = TravelPlanner.__new__(TravelPlanner)
    response = f"Thought: done.\nAction: submit[\n{json.dumps(GOOD, indent=2)}\n]"
    action = env.parse_action(response)
    assert action.startswith("submit[") and json.loads(action[len("submit["):-1]) == GOOD
    assert env.parse_action("Thought: x\nAction: look") == "look"


def test_expert_is_the_annotated_plan(data_dir):
    env = TravelPlanner.from_params({"data_dir": str(data_dir)})
    assert conformance.expert_rate(env, "train", 5).rate == 1.0
    env.reset(env.tasks("test")[0])
    with pytest.raises(NoExpert):
        env.expert_step()


def test_contract(data_dir):
    env = TravelPlanner.from_params({"data_dir": str(data_dir)})
    task = env.tasks("train")[0]
    assert conformance.is_deterministic(env, task)
    assert conformance.branching_problems(env, task) == []
    assert all(conformance.garbage_problem(env, task, g) is None for g in conformance.GARBAGE_ACTIONS)
