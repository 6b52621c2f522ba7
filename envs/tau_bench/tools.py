"""The retail and airline domains' tools, written from τ²-bench's published tool semantics.

A read tool returns the record; a write tool checks the preconditions τ²-bench's tools check
(order status, item counts, availability, payment method, balances) and then changes the
database; a failed precondition is an error result and changes nothing. Tools take the episode's
:class:`Database` and keyword arguments; results are JSON-ready values or strings.

Dispatch (:func:`call_tool`) takes calls already parsed without evaluation (``bfcl.calls``):
only a tool of the episode's domain, arguments that bind to its signature and have its types.
Anything else is a :class:`RefusedCall` and nothing runs. ``calculate`` evaluates arithmetic by
walking a parsed expression of numbers and ``+ - * /`` (never ``eval``).
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentbench.envs.bfcl.calls import Call
from agentbench.envs.tau_bench.db import Database


class ToolError(ValueError):
    """A tool's precondition failed (the call is valid; its result is this error)."""


class RefusedCall(ValueError):
    """Not a call of one of the domain's tools with arguments of the right types."""


TRANSFER = "transfer_to_human_agents"


# -- shared ------------------------------------------------------------------------------------

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(node: ast.AST, depth: int = 0) -> float:
    if depth > 50:
        raise ToolError("expression too deep")
    if isinstance(node, ast.Expression):
        return _arith(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _arith(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _arith(node.left, depth + 1), _arith(node.right, depth + 1)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ToolError("division by zero")
        return _OPS[type(node.op)](left, right)
    raise ToolError("only numbers, + - * / and parentheses are allowed")


def calculate(db: Database, expression: str) -> str:
    """Calculate the result of a mathematical expression (numbers, + - * /, parentheses)."""
    if len(expression) > 500 or not all(c in "0123456789+-*/(). " for c in expression):
        raise ToolError("Invalid characters in expression")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError("Invalid expression") from None
    return str(round(_arith(tree), 2))


def transfer_to_human_agents(db: Database, summary: str) -> str:
    """Transfer the user to a human agent, with a summary of the user's issue (ends the conversation)."""
    return "Transfer successful"


def _need(db: Database, collection: str, key: str, what: str) -> dict[str, Any]:
    record = db.get(collection, key)
    if record is None:
        raise ToolError(f"{what} not found")
    return record


# -- retail ------------------------------------------------------------------------------------

def _item_variant(db: Database, product_id: str, item_id: str) -> dict[str, Any]:
    product = _need(db, "products", product_id, "Product")
    if item_id not in product["variants"]:
        raise ToolError(f"Item {item_id} not found")
    return product["variants"][item_id]


def _payment(user: dict[str, Any], payment_method_id: str) -> dict[str, Any]:
    if payment_method_id not in user["payment_methods"]:
        raise ToolError("Payment method not found")
    return user["payment_methods"][payment_method_id]


def _count_ok(order: dict[str, Any], item_ids: list[str]) -> None:
    present = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > present.count(item_id):
            raise ToolError(f"{item_id} not found in the order (or not that many)")


def _price_difference(db: Database, order: dict[str, Any], item_ids: list[str], new_item_ids: list[str],
                      different: bool) -> tuple[float, list[dict[str, Any]]]:
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match")
    diff, variants = 0.0, []
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        if different and item_id == new_item_id:
            raise ToolError("The new item id should be different from the old item id")
        item = next(i for i in order["items"] if i["item_id"] == item_id)
        variant = _item_variant(db, item["product_id"], new_item_id)
        if not variant["available"]:
            raise ToolError(f"New item {new_item_id} not found or available")
        diff += variant["price"] - item["price"]
        variants.append(variant)
    return round(diff, 2), variants


def find_user_id_by_email(db: Database, email: str) -> str:
    """Find a user's id by email."""
    for user in db.values("users"):
        if user["email"].lower() == email.lower():
            return user["user_id"]
    raise ToolError("User not found")


def find_user_id_by_name_zip(db: Database, first_name: str, last_name: str, zip: str) -> str:
    """Find a user's id by first name, last name and zip code."""
    for user in db.values("users"):
        if (user["name"]["first_name"].lower() == first_name.lower()
                and user["name"]["last_name"].lower() == last_name.lower() and user["address"]["zip"] == zip):
            return user["user_id"]
    raise ToolError("User not found")


def get_user_details(db: Database, user_id: str) -> dict[str, Any]:
    """The user's details (profile, payment methods, orders or reservations)."""
    return _need(db, "users", user_id, "User")


def get_order_details(db: Database, order_id: str) -> dict[str, Any]:
    """The status and details of an order (order ids start with '#')."""
    return _need(db, "orders", order_id, "Order")


def get_product_details(db: Database, product_id: str) -> dict[str, Any]:
    """A product's details and all its item variants (options, availability, price)."""
    return _need(db, "products", product_id, "Product")


def get_item_details(db: Database, item_id: str) -> dict[str, Any]:
    """One item variant's details (options, availability, price)."""
    for product in db.values("products"):
        if item_id in product["variants"]:
            return product["variants"][item_id]
    raise ToolError("Item not found")


def list_all_product_types(db: Database) -> dict[str, str]:
    """All product types: name -> product id."""
    return dict(sorted((p["name"], p["product_id"]) for p in db.values("products")))


def cancel_pending_order(db: Database, order_id: str, reason: str) -> dict[str, Any]:
    """Cancel a pending order; reason: 'no longer needed' or 'ordered by mistake'. Refunds to gift cards at once."""
    order = _need(db, "orders", order_id, "Order")
    if order["status"] != "pending":
        raise ToolError("Non-pending order cannot be cancelled")
    if reason not in ("no longer needed", "ordered by mistake"):
        raise ToolError("Invalid reason")
    user = _need(db, "users", order["user_id"], "User")
    for payment in order["payment_history"]:
        _payment(user, payment["payment_method_id"])
    order = db.write("orders", order_id)
    user = db.write("users", order["user_id"])
    refunds = []
    for payment in order["payment_history"]:
        refunds.append({"transaction_type": "refund", "amount": payment["amount"],
                        "payment_method_id": payment["payment_method_id"]})
        method = user["payment_methods"][payment["payment_method_id"]]
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] + payment["amount"], 2)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return order


def exchange_delivered_order_items(db: Database, order_id: str, item_ids: list[str], new_item_ids: list[str],
                                   payment_method_id: str) -> dict[str, Any]:
    """Exchange items of a delivered order for other variants of the same products; the price difference is paid or refunded with the payment method."""
    order = _need(db, "orders", order_id, "Order")
    if order["status"] != "delivered":
        raise ToolError("Non-delivered order cannot be exchanged")
    _count_ok(order, item_ids)
    diff, _ = _price_difference(db, order, item_ids, new_item_ids, different=False)
    method = _payment(_need(db, "users", order["user_id"], "User"), payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise ToolError("Insufficient gift card balance to pay for the price difference")
    order = db.write("orders", order_id)
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff
    return order


def _address(address1: str, address2: str, city: str, state: str, country: str, zip: str) -> dict[str, str]:
    return {"address1": address1, "address2": address2, "city": city, "country": country, "state": state, "zip": zip}


def modify_pending_order_address(db: Database, order_id: str, address1: str, address2: str, city: str, state: str,
                                 country: str, zip: str) -> dict[str, Any]:
    """Change the shipping address of a pending order."""
    order = _need(db, "orders", order_id, "Order")
    if "pending" not in order["status"]:
        raise ToolError("Non-pending order cannot be modified")
    order = db.write("orders", order_id)
    order["address"] = _address(address1, address2, city, state, country, zip)
    return order


def modify_pending_order_items(db: Database, order_id: str, item_ids: list[str], new_item_ids: list[str],
                               payment_method_id: str) -> dict[str, Any]:
    """Swap items of a pending order for other variants of the same products (once per order); the difference is paid or refunded."""
    order = _need(db, "orders", order_id, "Order")
    if order["status"] != "pending":
        raise ToolError("Non-pending order cannot be modified")
    _count_ok(order, item_ids)
    diff, variants = _price_difference(db, order, item_ids, new_item_ids, different=True)
    user = _need(db, "users", order["user_id"], "User")
    method = _payment(user, payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise ToolError("Insufficient gift card balance to pay for the new item")
    order = db.write("orders", order_id)
    order["payment_history"].append({"transaction_type": "payment" if diff > 0 else "refund", "amount": abs(diff),
                                     "payment_method_id": payment_method_id})
    if method["source"] == "gift_card":
        method = db.write("users", order["user_id"])["payment_methods"][payment_method_id]
        method["balance"] = round(method["balance"] - diff, 2)
    for item_id, new_item_id, variant in zip(item_ids, new_item_ids, variants):
        item = next(i for i in order["items"] if i["item_id"] == item_id)
        item["item_id"] = new_item_id
        item["price"] = variant["price"]
        item["options"] = copy.deepcopy(variant["options"])
    order["status"] = "pending (item modified)"
    return order


def modify_pending_order_payment(db: Database, order_id: str, payment_method_id: str) -> dict[str, Any]:
    """Pay a pending order with another of the user's payment methods (the first is refunded)."""
    order = _need(db, "orders", order_id, "Order")
    if "pending" not in order["status"]:
        raise ToolError("Non-pending order cannot be modified")
    user = _need(db, "users", order["user_id"], "User")
    method = _payment(user, payment_method_id)
    history = order["payment_history"]
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        raise ToolError("There should be exactly one payment for a pending order")
    old_id, amount = history[0]["payment_method_id"], history[0]["amount"]
    if old_id == payment_method_id:
        raise ToolError("The new payment method should be different from the current one")
    if method["source"] == "gift_card" and method["balance"] < amount:
        raise ToolError("Insufficient gift card balance to pay for the order")
    order = db.write("orders", order_id)
    order["payment_history"].extend([
        {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
        {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id}])
    methods = db.write("users", order["user_id"])["payment_methods"]
    if methods[payment_method_id]["source"] == "gift_card":
        methods[payment_method_id]["balance"] = round(methods[payment_method_id]["balance"] - amount, 2)
    if old_id in methods and methods[old_id]["source"] == "gift_card":
        methods[old_id]["balance"] = round(methods[old_id]["balance"] + amount, 2)
    return order


def modify_user_address(db: Database, user_id: str, address1: str, address2: str, city: str, state: str,
                        country: str, zip: str) -> dict[str, Any]:
    """Change a user's default address."""
    _need(db, "users", user_id, "User")
    user = db.write("users", user_id)
    user["address"] = _address(address1, address2, city, state, country, zip)
    return user


def return_delivered_order_items(db: Database, order_id: str, item_ids: list[str], payment_method_id: str) -> dict[str, Any]:
    """Return items of a delivered order; the refund goes to the original payment method or a gift card."""
    order = _need(db, "orders", order_id, "Order")
    if order["status"] != "delivered":
        raise ToolError("Non-delivered order cannot be returned")
    method = _payment(_need(db, "users", order["user_id"], "User"), payment_method_id)
    if method["source"] != "gift_card" and payment_method_id != order["payment_history"][0]["payment_method_id"]:
        raise ToolError("Payment method should be either the original payment method or a gift card")
    _count_ok(order, item_ids)
    order = db.write("orders", order_id)
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return order


# -- airline -----------------------------------------------------------------------------------

AIRPORTS = {"SFO": "San Francisco", "JFK": "New York", "LAX": "Los Angeles", "ORD": "Chicago", "DFW": "Dallas",
            "DEN": "Denver", "SEA": "Seattle", "ATL": "Atlanta", "MIA": "Miami", "BOS": "Boston", "PHX": "Phoenix",
            "IAH": "Houston", "LAS": "Las Vegas", "MCO": "Orlando", "EWR": "Newark", "CLT": "Charlotte",
            "MSP": "Minneapolis", "DTW": "Detroit", "PHL": "Philadelphia", "LGA": "LaGuardia"}
CABINS = ("basic_economy", "economy", "business")


def _flight_date(db: Database, flight_number: str, date: str) -> tuple[dict[str, Any], dict[str, Any]]:
    flight = _need(db, "flights", flight_number, f"Flight {flight_number}")
    if date not in flight["dates"]:
        raise ToolError(f"Flight {flight_number} not found on date {date}")
    return flight, flight["dates"][date]


def _direct(db: Database, date: str, origin: str | None, destination: str | None,
            leave_after: str | None = None) -> list[dict[str, Any]]:
    out = []
    for flight in db.values("flights"):
        status = flight["dates"].get(date)
        if not status or status.get("status") != "available":
            continue
        if (origin is not None and flight["origin"] != origin) or (destination is not None and flight["destination"] != destination):
            continue
        if leave_after is not None and flight["scheduled_departure_time_est"] < leave_after:
            continue
        out.append({k: flight[k] for k in ("flight_number", "origin", "destination", "scheduled_departure_time_est",
                                           "scheduled_arrival_time_est")}
                   | {"date": date, "status": "available", "available_seats": status["available_seats"],
                      "prices": status["prices"]})
    return out


def get_reservation_details(db: Database, reservation_id: str) -> dict[str, Any]:
    """The details of a reservation."""
    return _need(db, "reservations", reservation_id, f"Reservation {reservation_id}")


def list_all_airports(db: Database) -> dict[str, str]:
    """All airports: IATA code -> city."""
    return dict(AIRPORTS)


def search_direct_flight(db: Database, origin: str, destination: str, date: str) -> list[dict[str, Any]]:
    """Direct flights between two airports (IATA codes) on a date (YYYY-MM-DD) that can be booked."""
    return _direct(db, date, origin, destination)


def search_onestop_flight(db: Database, origin: str, destination: str, date: str) -> list[list[dict[str, Any]]]:
    """One-stop connections between two airports on a date (the second leg may leave the next day)."""
    out = []
    for first in _direct(db, date, origin, None):
        second_date = (f"2024-05-{int(date[-2:]) + 1}" if "+1" in first["scheduled_arrival_time_est"] else date)
        for second in _direct(db, second_date, first["destination"], destination, first["scheduled_arrival_time_est"]):
            out.append([first, second])
    return out


def get_flight_status(db: Database, flight_number: str, date: str) -> str:
    """The status of a flight on a date."""
    return str(_flight_date(db, flight_number, date)[1]["status"])


def _charge(db: Database, user_id: str, payment_id: str, amount: float) -> dict[str, Any] | None:
    """Check and take an update's payment (no certificates); the payment record, or None for 0."""
    method = _payment(_need(db, "users", user_id, "User"), payment_id)
    if method["source"] == "certificate":
        raise ToolError("Certificate cannot be used to update reservation")
    if method["source"] == "gift_card" and method["amount"] < amount:
        raise ToolError("Gift card balance is not enough")
    if method["source"] == "gift_card":
        gift = db.write("users", user_id)["payment_methods"][payment_id]
        gift["amount"] = round(gift["amount"] - amount, 2)
    return {"payment_id": payment_id, "amount": amount} if amount != 0 else None


def book_reservation(db: Database, user_id: str, origin: str, destination: str, flight_type: str, cabin: str,
                     flights: list[dict], passengers: list[dict], payment_methods: list[dict], total_baggages: int,
                     nonfree_baggages: int, insurance: str) -> dict[str, Any]:
    """Book a reservation. flights: [{flight_number, date}]; passengers: [{first_name, last_name, dob}]; payment_methods: [{payment_id, amount}]; insurance: 'yes' or 'no'."""
    user = _need(db, "users", user_id, "User")
    if cabin not in CABINS:
        raise ToolError(f"Invalid cabin {cabin}")
    reservation_id = next((r for r in ("HATHAT", "HATHAU", "HATHAV") if not db.has("reservations", r)), None)
    if reservation_id is None:
        raise ToolError("Too many reservations")
    booked, total = [], 0.0
    for leg in flights:
        flight, status = _flight_date(db, str(leg.get("flight_number")), str(leg.get("date")))
        if status.get("status") != "available":
            raise ToolError(f"Flight {flight['flight_number']} not available on date {leg['date']}")
        if status["available_seats"][cabin] < len(passengers):
            raise ToolError(f"Not enough seats on flight {flight['flight_number']}")
        booked.append({"flight_number": flight["flight_number"], "origin": flight["origin"],
                       "destination": flight["destination"], "date": leg["date"], "price": status["prices"][cabin]})
        total += status["prices"][cabin] * len(passengers)
    total += (30 * len(passengers) if insurance == "yes" else 0) + 50 * nonfree_baggages
    for payment in payment_methods:
        method = _payment(user, str(payment.get("payment_id")))
        if method["source"] in ("gift_card", "certificate") and method["amount"] < payment.get("amount", 0):
            raise ToolError(f"Not enough balance in payment method {payment['payment_id']}")
    paid = sum(p.get("amount", 0) for p in payment_methods)
    if paid != total:
        raise ToolError(f"Payment amount does not add up, total price is {total}, but paid {paid}")
    user = db.write("users", user_id)
    for payment in payment_methods:
        method = user["payment_methods"][payment["payment_id"]]
        if method["source"] == "gift_card":
            method["amount"] = round(method["amount"] - payment["amount"], 2)
        elif method["source"] == "certificate":
            user["payment_methods"].pop(payment["payment_id"])
    for leg in booked:
        db.write("flights", leg["flight_number"])["dates"][leg["date"]]["available_seats"][cabin] -= len(passengers)
    reservation = {"reservation_id": reservation_id, "user_id": user_id, "origin": origin, "destination": destination,
                   "flight_type": flight_type, "cabin": cabin, "flights": booked, "passengers": copy.deepcopy(passengers),
                   "payment_history": copy.deepcopy(payment_methods), "created_at": "2024-05-15T15:00:00",
                   "total_baggages": total_baggages, "nonfree_baggages": nonfree_baggages, "insurance": insurance,
                   "status": None}
    db.insert("reservations", reservation_id, reservation)
    user["reservations"].append(reservation_id)
    return reservation


def cancel_reservation(db: Database, reservation_id: str) -> dict[str, Any]:
    """Cancel a whole reservation; every payment is refunded."""
    _need(db, "reservations", reservation_id, f"Reservation {reservation_id}")
    reservation = db.write("reservations", reservation_id)
    reservation["payment_history"].extend({"payment_id": p["payment_id"], "amount": -p["amount"]}
                                          for p in list(reservation["payment_history"]))
    reservation["status"] = "cancelled"
    return reservation


def send_certificate(db: Database, user_id: str, amount: int) -> str:
    """Send the user a travel certificate of this amount (as compensation)."""
    user = _need(db, "users", user_id, "User")
    for certificate_id in ("certificate_3221322", "certificate_3221323", "certificate_3221324"):
        if certificate_id not in user["payment_methods"]:
            db.write("users", user_id)["payment_methods"][certificate_id] = {
                "source": "certificate", "id": certificate_id, "amount": amount}
            return f"Certificate {certificate_id} added to user {user_id} with amount {amount}."
    raise ToolError("Too many certificates")


def update_reservation_baggages(db: Database, reservation_id: str, total_baggages: int, nonfree_baggages: int,
                                payment_id: str) -> dict[str, Any]:
    """Change a reservation's baggage counts; each extra non-free bag costs 50."""
    reservation = _need(db, "reservations", reservation_id, f"Reservation {reservation_id}")
    payment = _charge(db, reservation["user_id"], payment_id, 50 * max(0, nonfree_baggages - reservation["nonfree_baggages"]))
    reservation = db.write("reservations", reservation_id)
    if payment is not None:
        reservation["payment_history"].append(payment)
    reservation["total_baggages"], reservation["nonfree_baggages"] = total_baggages, nonfree_baggages
    return reservation


def update_reservation_flights(db: Database, reservation_id: str, cabin: str, flights: list[dict],
                               payment_id: str) -> dict[str, Any]:
    """Change a reservation's flights and/or cabin (all flights given, changed or not: [{flight_number, date}]); the difference is paid or refunded."""
    reservation = _need(db, "reservations", reservation_id, f"Reservation {reservation_id}")
    if cabin not in CABINS:
        raise ToolError(f"Invalid cabin {cabin}")
    n, total, legs = len(reservation["passengers"]), 0.0, []
    for leg in flights:
        number, date = str(leg.get("flight_number")), str(leg.get("date"))
        kept = next((f for f in reservation["flights"] if f["flight_number"] == number and f["date"] == date
                     and cabin == reservation["cabin"]), None)
        if kept is not None:
            total += kept["price"] * n
            legs.append(copy.deepcopy(kept))
            continue
        flight, status = _flight_date(db, number, date)
        if status.get("status") != "available":
            raise ToolError(f"Flight {number} not available on date {date}")
        if status["available_seats"][cabin] < n:
            raise ToolError(f"Not enough seats on flight {number}")
        legs.append({"flight_number": number, "origin": flight["origin"], "destination": flight["destination"],
                     "date": date, "price": status["prices"][cabin]})
        total += status["prices"][cabin] * n
    total -= sum(f["price"] for f in reservation["flights"]) * n
    payment = _charge(db, reservation["user_id"], payment_id, total)
    reservation = db.write("reservations", reservation_id)
    if payment is not None:
        reservation["payment_history"].append(payment)
    reservation["flights"], reservation["cabin"] = legs, cabin
    return reservation


def update_reservation_passengers(db: Database, reservation_id: str, passengers: list[dict]) -> dict[str, Any]:
    """Replace a reservation's passengers' details (the number of passengers cannot change)."""
    reservation = _need(db, "reservations", reservation_id, f"Reservation {reservation_id}")
    if len(passengers) != len(reservation["passengers"]):
        raise ToolError("Number of passengers does not match")
    reservation = db.write("reservations", reservation_id)
    reservation["passengers"] = copy.deepcopy(passengers)
    return reservation


# -- the domains' tool sets and dispatch -------------------------------------------------------

@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable[..., Any]
    writes: bool

    @property
    def signature(self) -> inspect.Signature:
        parameters = list(inspect.signature(self.function).parameters.values())
        return inspect.Signature(parameters[1:])

    def describe(self) -> str:
        params = ", ".join(f"{p.name}: {p.annotation}" for p in self.signature.parameters.values())
        doc = (self.function.__doc__ or "").strip().splitlines()[0]
        return f"{self.name}({params}): {doc}"


def _tools(reads: list[Callable[..., Any]], writes: list[Callable[..., Any]]) -> dict[str, Tool]:
    tools = [Tool(f.__name__, f, False) for f in reads] + [Tool(f.__name__, f, True) for f in writes]
    return {t.name: t for t in sorted(tools, key=lambda t: t.name)}


DOMAIN_TOOLS: dict[str, dict[str, Tool]] = {
    "retail": _tools(
        [calculate, find_user_id_by_email, find_user_id_by_name_zip, get_item_details, get_order_details,
         get_product_details, get_user_details, list_all_product_types, transfer_to_human_agents],
        [cancel_pending_order, exchange_delivered_order_items, modify_pending_order_address,
         modify_pending_order_items, modify_pending_order_payment, modify_user_address, return_delivered_order_items]),
    "airline": _tools(
        [calculate, get_flight_status, get_reservation_details, get_user_details, list_all_airports,
         search_direct_flight, search_onestop_flight, transfer_to_human_agents],
        [book_reservation, cancel_reservation, send_certificate, update_reservation_baggages,
         update_reservation_flights, update_reservation_passengers]),
}

_TYPES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "list[dict]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
}


def bind(domain: str, call: Call) -> tuple[Tool, dict[str, Any]]:
    """The domain's tool and the call's arguments by name; raises :class:`RefusedCall`."""
    tool = DOMAIN_TOOLS[domain].get(call.name)
    if tool is None:
        raise RefusedCall(f"{call.name} is not one of the {domain} tools")
    try:
        bound = tool.signature.bind(*call.args, **dict(call.kwargs))
    except TypeError as exc:
        raise RefusedCall(f"{call.name}: {exc}") from None
    for name, value in bound.arguments.items():
        kind = str(tool.signature.parameters[name].annotation)
        if not _TYPES[kind](value):
            raise RefusedCall(f"{call.name}: {name} must be {kind}, got {type(value).__name__}")
        if kind == "int":
            bound.arguments[name] = int(value)
    return tool, dict(bound.arguments)


def run_tool(db: Database, tool: Tool, arguments: dict[str, Any]) -> tuple[str, bool]:
    """Run a bound call: (its result as text, whether it succeeded). A failed write leaves ``db`` as it was."""
    before = db.snapshot() if tool.writes else None
    try:
        result = tool.function(db, **copy.deepcopy(arguments))
    except Exception as exc:  # a precondition (ToolError) or the data's shape (KeyError on a bad record)
        if before is not None:
            db.restore(before)
        message = str(exc) if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
        return f"Error: {message}", False
    return (result if isinstance(result, str) else json.dumps(result, sort_keys=True)), True


def call_text(name: str, arguments: dict[str, Any]) -> str:
    return Call(name, (), tuple(arguments.items())).text()
