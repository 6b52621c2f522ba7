"""A loopback imitation of WebArena's shopping site (One Stop Market), for tests and demos.

It is *not* the real Magento site: it reproduces the parts WebArena tasks and their evaluators
touch, at the same paths and with the same labels, so that the env's login flow, actions and
evaluators run unchanged against it:

- login at ``/customer/account/login/`` (labels "Email", "Password", button "Sign In"), with
  WebArena's published shopping account;
- search at ``/catalogsearch/result/?q=...`` (the search changes the URL);
- product pages ``/<slug>.html`` with price, SKU, reviews, "Add to Cart" and a review form;
- state-changing forms: the cart, checkout ("Place Order") and reviews;
- orders at ``/sales/order/history/`` and ``/sales/order/view/order_id/<n>/`` (with the
  ``.order-details-items.ordered`` block WebArena's locators read);
- the part of Magento's REST API that WebArena's ``shopping_get_latest_order_url`` helper
  calls (admin token, orders sorted by ``created_at``);
- a few encyclopedia pages under ``/wikipedia/A/`` (a second "site" for multi-site tasks);
- ``/promotions/``, which embeds a partner's image from another host (``partner_image``), for
  testing that the browser refuses requests outside the allowlist;
- the reset hook: ``GET /reset`` restores the initial data (BrowserGym's ``WA_FULL_RESET``
  convention). Sessions survive a reset so that concurrent episodes stay logged in.

Run it for a demo::

    python -m agentbench.envs.webarena.fixture_site --port 8080

which prints the ``WA_*`` variables to export and the fixture task and expert files.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import secrets
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

FIXTURE_DIR = Path(__file__).parent / "fixture"
TASK_FILE = FIXTURE_DIR / "tasks.json"
EXPERT_FILE = FIXTURE_DIR / "expert.jsonl"

CUSTOMER = {"email": "emma.lopez@gmail.com", "password": "Password.123", "name": "Emma Lopez"}
ADMIN = {"username": "admin", "password": "admin1234"}
WIKI_PREFIX = "/wikipedia/A/"


@dataclass
class Review:
    nickname: str
    summary: str
    text: str
    percent: int


@dataclass
class Product:
    slug: str
    name: str
    price: float
    sku: str
    description: str
    reviews: list[Review] = field(default_factory=list)


def _catalogue() -> dict[str, Product]:
    products = [
        Product("hawk-yoga-mat", "Hawk Yoga Mat", 29.99, "HYM-01", "A 6 mm mat with a grippy surface.",
                [Review("Lena", "Great grip", "Thick and does not slip.", 80)]),
        Product("yoga-block-set", "Yoga Block Set", 15.00, "YBS-02", "Two foam blocks for balance poses.", []),
        Product("tall-pink-taper-candles", "Tall Pink Taper Candles", 12.99, "TPC-04",
                "Four dripless taper candles, ten inches tall.",
                [Review("Mara", "Lovely colour", "Burned for eight hours each.", 100),
                 Review("Tom", "Bent in transit", "Two arrived bent.", 40)]),
        Product("white-starfish-wall-candle-sconces", "White Starfish Wall Candle Sconces", 24.50, "WSS-07",
                "A pair of beach-themed wall-mounted candle holders.", []),
        Product("ocean-blue-ceramic-mug", "Ocean Blue Ceramic Mug", 9.75, "OBM-11",
                "A 12 oz stoneware mug, dishwasher safe.",
                [Review("Ravi", "Solid mug", "Sturdy, heavy and it keeps coffee warm for a long time.", 100)]),
        Product("trail-running-shoes", "Trail Running Shoes", 59.00, "TRS-21", "Lightweight shoes with deep lugs.",
                [Review("Ana", "Comfortable", "Comfortable from the first run.", 80)]),
        Product("bamboo-cutting-board", "Bamboo Cutting Board", 18.25, "BCB-30", "A reversible bamboo board.",
                [Review("Joe", "Nice board", "Knife-friendly and easy to clean.", 80),
                 Review("Ivy", "Warped", "Warped after a month.", 40),
                 Review("Sam", "Good value", "Good value for the price.", 60)]),
        Product("stainless-steel-water-bottle", "Stainless Steel Water Bottle", 21.00, "SWB-33",
                "Keeps drinks cold for 24 hours.", []),
    ]
    return {p.slug: p for p in products}


@dataclass
class Order:
    increment_id: str
    created_at: str
    items: list[tuple[str, int, float]]
    status: str = "Pending"

    @property
    def total(self) -> float:
        return round(sum(qty * price for _, qty, price in self.items), 2)


def _initial_orders() -> list[Order]:
    return [
        Order("000000169", "2023-03-02 10:14:00", [("Bamboo Cutting Board", 1, 18.25)], "Complete"),
        Order("000000170", "2023-04-11 16:40:00", [("Hawk Yoga Mat", 1, 29.99), ("Yoga Block Set", 2, 15.00)],
              "Complete"),
    ]


WIKI_PAGES = {
    "Landing": ("Welcome to the offline encyclopedia",
                ["Browse the articles below."], ["Candle", "Yoga", "Ceramic"]),
    "Candle": ("Candle", ["A candle is an ignitable wick embedded in wax.",
                          "Most modern candles are made from paraffin wax, a by-product of petroleum refining."],
               ["Yoga"]),
    "Yoga": ("Yoga", ["Yoga is a group of physical, mental and spiritual practices that originated in ancient India.",
                      "A yoga mat keeps the practitioner from slipping."], ["Candle"]),
    "Ceramic": ("Ceramic", ["A ceramic is a material made by shaping and firing clay at high temperature.",
                            "Stoneware is fired at around 1200 degrees Celsius."], ["Landing"]),
}


class FixtureData:
    """The site's mutable state, behind one lock; ``reset()`` is the reset hook."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sessions: dict[str, str] = {}  # session id -> customer email (survive resets)
        self.admin_tokens: set[str] = set()
        self.resets = 0
        self._restore()

    def _restore(self) -> None:
        self.products = _catalogue()
        self.cart: list[tuple[str, int]] = []
        self.orders = _initial_orders()
        self.next_order = 171
        self.clock = 0

    def reset(self) -> None:
        with self.lock:
            self._restore()
            self.resets += 1

    def snapshot(self) -> dict[str, Any]:
        """The data a reset restores, for tests that check the reset hook."""
        with self.lock:
            return copy.deepcopy({"cart": self.cart, "orders": [o.increment_id for o in self.orders],
                                  "reviews": {s: len(p.reviews) for s, p in self.products.items()}})


# -- HTML -------------------------------------------------------------------------------------

def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _layout(title: str, body: str, user: str | None) -> str:
    account = (f'<span>Welcome, {_e(CUSTOMER["name"])}!</span> <a href="/customer/account/">My Account</a> '
               '<a href="/customer/account/logout/">Sign Out</a>'
               if user else '<a href="/customer/account/login/">Sign In</a>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title></head>
<body>
<header>
<nav aria-label="Account links">{account} <a href="/checkout/cart/">My Cart</a></nav>
<a href="/">One Stop Market</a>
<form role="search" action="/catalogsearch/result/" method="get">
<input id="search" name="q" type="search" aria-label="Search"> <button type="submit">Search</button>
</form>
</header>
<main>
{body}
</main>
</body></html>"""


def _product_list(products: list[Product]) -> str:
    items = "".join(f'<li><a href="/{p.slug}.html">{_e(p.name)}</a> <span>{_money(p.price)}</span></li>'
                    for p in products)
    return f'<ul class="products" style="list-style: none">{items}</ul>'


class FixtureHandler(BaseHTTPRequestHandler):
    server_version = "OneStopMarketFixture/1"
    data: FixtureData
    partner_image: str | None = None

    # -- plumbing -------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own output
        pass

    def _user(self) -> str | None:
        cookies = self.headers.get("Cookie", "")
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "sid":
                return self.data.sessions.get(value)
        return None

    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        blob = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(blob)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(blob)

    def _html(self, title: str, body: str, status: int = 200) -> None:
        self._send(status, _layout(title, body, self._user()))

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(HTTPStatus.FOUND, "", headers={"Location": location, **(headers or {})})

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj), "application/json")

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            try:
                parsed = json.loads(raw or "{}")
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _not_found(self) -> None:
        self._html("404 Not Found", "<h1>Whoops, our bad...</h1><p>The page you requested was not found.</p>", 404)

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        with self.data.lock:
            if path == "/reset":
                self.data.reset()
                return self._send(200, "reset complete\n", "text/plain")
            if path.startswith("/rest/"):
                return self._rest_get(path, query)
            if path.startswith(WIKI_PREFIX):
                return self._wiki(path[len(WIKI_PREFIX):])
            route = {
                "/": self._home,
                "/customer/account/login/": self._login_page,
                "/customer/account/logout/": self._logout,
                "/customer/account/": self._account,
                "/catalogsearch/result/": lambda: self._search(query.get("q", [""])[0]),
                "/checkout/cart/": self._cart,
                "/checkout/": self._checkout,
                "/checkout/onepage/success/": lambda: self._success(query.get("order", [""])[0]),
                "/sales/order/history/": self._orders,
                "/promotions/": self._promotions,
            }.get(path)
            if route is not None:
                return route()
            if path.startswith("/sales/order/view/order_id/"):
                return self._order(path.removeprefix("/sales/order/view/order_id/").strip("/"))
            if path.endswith(".html") and path[1:-5] in self.data.products:
                return self._product(path[1:-5], query.get("message", [""])[0])
            return self._not_found()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        with self.data.lock:
            route = {
                "/customer/account/loginPost/": self._login_post,
                "/checkout/cart/add/": self._cart_add,
                "/checkout/placeOrder/": self._place_order,
                "/review/product/post/": self._review_post,
                "/rest/default/V1/integration/admin/token": self._rest_token,
            }.get(path)
            if route is None:
                return self._not_found()
            return route(form)

    # -- pages ----------------------------------------------------------------------------
    def _home(self) -> None:
        products = list(self.data.products.values())[:6]
        self._html("One Stop Market", f"<h1>One Stop Market</h1><h2>Featured products</h2>{_product_list(products)}")

    def _promotions(self) -> None:
        # A partner's banner from another host: the env's allowlist must refuse it.
        banner = (f'<img src="{_e(self.partner_image)}" alt="Partner offer" width="120" height="30">'
                  if self.partner_image else "")
        self._html("Promotions", f"<h1>Promotions</h1><p>Our partners' offers.</p>{banner}")

    def _login_page(self, error: str = "") -> None:
        message = f'<div role="alert">{_e(error)}</div>' if error else ""
        body = f"""<h1>Customer Login</h1>{message}
<form method="post" action="/customer/account/loginPost/">
<label for="email">Email</label> <input id="email" name="login[username]" type="email">
<label for="pass">Password</label> <input id="pass" name="login[password]" type="password">
<button type="submit">Sign In</button>
</form>"""
        self._html("Customer Login", body)

    def _login_post(self, form: dict[str, str]) -> None:
        if (form.get("login[username]") == CUSTOMER["email"]
                and form.get("login[password]") == CUSTOMER["password"]):
            sid = secrets.token_hex(16)
            self.data.sessions[sid] = CUSTOMER["email"]
            return self._redirect("/customer/account/", {"Set-Cookie": f"sid={sid}; Path=/; HttpOnly"})
        return self._login_page("The account sign-in was incorrect. Please try again.")

    def _logout(self) -> None:
        self._redirect("/", {"Set-Cookie": "sid=; Path=/; Max-Age=0"})

    def _require_login(self) -> bool:
        if self._user() is None:
            self._redirect("/customer/account/login/")
            return False
        return True

    def _account(self) -> None:
        if not self._require_login():
            return
        body = f"""<h1>My Account</h1>
<section><h2>Contact Information</h2><p>{_e(CUSTOMER["name"])}</p><p>{_e(CUSTOMER["email"])}</p></section>
<nav aria-label="Account sections"><a href="/sales/order/history/">My Orders</a> <a href="/checkout/cart/">My Cart</a></nav>"""
        self._html("My Account", body)

    def _search(self, q: str) -> None:
        terms = q.lower().split()
        hits = [p for p in self.data.products.values() if terms and all(t in p.name.lower() for t in terms)]
        found = _product_list(hits) if hits else "<p>Your search returned no results.</p>"
        self._html(f"Search results for: '{q}'", f"<h1>Search results for: '{_e(q)}'</h1>"
                   f"<p>{len(hits)} items</p>{found}")

    def _product(self, slug: str, message: str) -> None:
        p = self.data.products[slug]
        notice = f'<div role="status">{_e(message)}</div>' if message else ""
        reviews = "".join(
            f'<li>{_e(r.summary)} (rating {r.percent}%): {_e(r.text)} Review by {_e(r.nickname)}</li>'
            for r in p.reviews
        ) or "<li>There are no reviews yet.</li>"
        body = f"""{notice}<h1>{_e(p.name)}</h1>
<p>Price: {_money(p.price)}</p><p>SKU: {_e(p.sku)}. {_e(p.description)}</p>
<form method="post" action="/checkout/cart/add/"><input type="hidden" name="product" value="{_e(slug)}">
<input type="hidden" name="qty" value="1"><button type="submit">Add to Cart</button></form>
<section id="customer-reviews"><h2>Customer Reviews ({len(p.reviews)})</h2>
<ul style="list-style: none">{reviews}</ul></section>
<section><h2>Write Your Own Review</h2>
<form method="post" action="/review/product/post/"><input type="hidden" name="product" value="{_e(slug)}">
<input name="nickname" aria-label="Nickname"> <input name="summary" aria-label="Summary">
<textarea name="text" aria-label="Review"></textarea>
<button type="submit">Submit Review</button></form></section>"""
        self._html(p.name, body)

    def _cart_add(self, form: dict[str, str]) -> None:
        if not self._require_login():
            return
        slug = form.get("product", "")
        if slug not in self.data.products:
            return self._not_found()
        try:
            qty = max(1, int(form.get("qty") or 1))
        except ValueError:
            qty = 1
        self.data.cart.append((slug, qty))
        name = self.data.products[slug].name
        self._redirect(f"/{slug}.html?message={quote(f'You added {name} to your shopping cart.')}")

    def _cart(self) -> None:
        if not self._require_login():
            return
        rows = "".join(
            f"<tr><td>{_e(self.data.products[s].name)}</td><td>{q}</td>"
            f"<td>{_money(q * self.data.products[s].price)}</td></tr>" for s, q in self.data.cart
        )
        table = (f'<table class="cart-items"><thead><tr><th>Item</th><th>Qty</th><th>Subtotal</th></tr></thead>'
                 f'<tbody>{rows}</tbody></table><a href="/checkout/">Proceed to Checkout</a>'
                 if rows else '<p class="cart-empty">You have no items in your shopping cart.</p>')
        self._html("Shopping Cart", f"<h1>Shopping Cart</h1>{table}")

    def _checkout(self) -> None:
        if not self._require_login():
            return
        if not self.data.cart:
            return self._redirect("/checkout/cart/")
        total = sum(q * self.data.products[s].price for s, q in self.data.cart)
        body = (f"<h1>Checkout</h1><p>Order total: {_money(total)}</p>"
                '<form method="post" action="/checkout/placeOrder/"><button type="submit">Place Order</button></form>')
        self._html("Checkout", body)

    def _place_order(self, form: dict[str, str]) -> None:
        if not self._require_login():
            return
        if not self.data.cart:
            return self._redirect("/checkout/cart/")
        items = [(self.data.products[s].name, q, self.data.products[s].price) for s, q in self.data.cart]
        self.data.clock += 1
        order = Order(f"{self.data.next_order:09d}", f"2023-05-01 09:{self.data.clock:02d}:00", items)
        self.data.orders.append(order)
        self.data.next_order += 1
        self.data.cart = []
        self._redirect(f"/checkout/onepage/success/?order={order.increment_id}")

    def _success(self, number: str) -> None:
        self._html("Success Page", f"<h1>Thank you for your purchase!</h1><p>Your order number is: {_e(number)}.</p>")

    def _orders(self) -> None:
        if not self._require_login():
            return
        rows = "".join(
            f"<tr><td>{o.increment_id}</td><td>{o.created_at[:10]}</td><td>{_money(o.total)}</td><td>{o.status}</td>"
            f'<td><a href="/sales/order/view/order_id/{int(o.increment_id)}/">View Order {o.increment_id}</a></td></tr>'
            for o in reversed(self.data.orders)
        )
        self._html("My Orders", '<h1>My Orders</h1><table class="orders"><thead><tr><th>Order #</th><th>Date</th>'
                   f"<th>Order Total</th><th>Status</th><th>Action</th></tr></thead><tbody>{rows}</tbody></table>")

    def _order(self, order_id: str) -> None:
        if not self._require_login():
            return
        order = next((o for o in self.data.orders if order_id.isdigit() and int(o.increment_id) == int(order_id)),
                     None)
        if order is None:
            return self._not_found()
        items = "".join(f"<tr><td>{_e(n)}</td><td>Ordered: {q}</td><td>{_money(p)}</td></tr>"
                        for n, q, p in order.items)
        body = (f"<h1>Order # {order.increment_id}</h1><p>Status: {order.status}</p>"
                f'<div class="order-details-items ordered"><table>{items}</table></div>'
                f"<p>Grand Total: {_money(order.total)}</p>")
        self._html(f"Order # {order.increment_id}", body)

    def _review_post(self, form: dict[str, str]) -> None:
        slug = form.get("product", "")
        if slug not in self.data.products:
            return self._not_found()
        nickname, summary, text = form.get("nickname", ""), form.get("summary", ""), form.get("text", "")
        if not (nickname and summary and text):
            return self._redirect(f"/{slug}.html?message={quote('Please fill in all review fields.')}")
        try:
            percent = int(form.get("rating") or 100)
        except ValueError:
            percent = 100
        self.data.products[slug].reviews.append(Review(nickname, summary, text, percent))
        self._redirect(f"/{slug}.html?message={quote('You submitted your review for moderation.')}")

    def _wiki(self, title: str) -> None:
        page = WIKI_PAGES.get(title)
        if page is None:
            return self._send(404, "<!doctype html><title>Not found</title><h1>Article not found</h1>")
        heading, paragraphs, links = page
        text = "".join(f"<p>{_e(p)}</p>" for p in paragraphs)
        see = "".join(f'<li><a href="{WIKI_PREFIX}{t}">{_e(t)}</a></li>' for t in links)
        self._send(200, f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(heading)}</title></head>
<body><main><h1>{_e(heading)}</h1>{text}<h2>See also</h2><ul>{see}</ul></main></body></html>""")

    # -- Magento-style REST API (what WebArena's site helpers call) ------------------------
    def _rest_token(self, form: dict[str, str]) -> None:
        if form.get("username") != ADMIN["username"] or form.get("password") != ADMIN["password"]:
            return self._json({"message": "The account sign-in was incorrect."}, 401)
        token = secrets.token_hex(16)
        self.data.admin_tokens.add(token)
        self._json(token)

    def _rest_get(self, path: str, query: dict[str, list[str]]) -> None:
        auth = self.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.data.admin_tokens:
            return self._json({"message": "The consumer isn't authorized to access %resources."}, 401)
        if path != "/rest/V1/orders":
            return self._json({"message": "Request does not match any route."}, 404)
        field_ = query.get("searchCriteria[sortOrders][0][field]", ["created_at"])[0]
        descending = query.get("searchCriteria[sortOrders][0][direction]", ["ASC"])[0].upper() == "DESC"
        size = int(query.get("searchCriteria[pageSize]", ["0"])[0] or 0)
        orders = sorted(self.data.orders, key=lambda o: getattr(o, field_, o.created_at), reverse=descending)
        items = [{"increment_id": o.increment_id, "created_at": o.created_at, "grand_total": o.total,
                  "status": o.status.lower()} for o in orders]
        self._json({"items": items[:size] if size else items, "total_count": len(items)})


class FixtureSite:
    """The fixture site on a loopback port, served from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, partner_image: str | None = None):
        self.data = FixtureData()
        handler = type("BoundFixtureHandler", (FixtureHandler,), {"data": self.data, "partner_image": partner_image})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The ``WA_*`` variables that point the env at this site."""
        return {"WA_SHOPPING": self.url, "WA_WIKIPEDIA": f"{self.url}{WIKI_PREFIX}Landing",
                "WA_FULL_RESET": f"{self.url}/reset"}

    def start(self) -> FixtureSite:
        self._thread = threading.Thread(target=self.server.serve_forever, name="fixture-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FixtureSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the One Stop Market fixture site on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (keep it on loopback)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    site = FixtureSite(args.host, args.port)
    print("# One Stop Market fixture site; point the env at it with:")
    for key, value in site.environment().items():
        print(f"export {key}={value}")
    print(f"# fixture tasks:  --set task_file={TASK_FILE}")
    print(f"# expert data:    --set expert_path={EXPERT_FILE}", flush=True)
    try:
        site.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        site.server.server_close()


if __name__ == "__main__":  # pragma: no cover
    main()
