"""A local stand-in for the few Stripe endpoints ticketing calls, for tests, the benchmark and offline development.

Stripe's API is not reachable from our test machines, and production code
must use the official `stripe` library unchanged. So tests point the
library's `api_base` (setting `STRIPE_API_BASE`) at this small HTTP server,
which answers like Stripe does for:

    POST /v1/checkout/sessions                 GET /v1/checkout/sessions/{id}
    POST /v1/checkout/sessions/{id}/expire     POST /v1/refunds
    GET  /v1/charges/{id}                      GET /v1/payment_intents/{id}
    POST /v1/accounts                          GET /v1/accounts/{id}
    POST /v1/account_links

with Stripe-shaped JSON objects and errors, the secret key checked, and
`Idempotency-Key` honoured (a repeat gets the first answer; a repeat with
other parameters gets Stripe's `idempotency_error`). It serves a minimal
hosted Checkout page (a "Pay" button) and Connect onboarding page, and it
signs the events it sends exactly as Stripe does
(`Stripe-Signature: t=<time>,v1=<HMAC-SHA256(secret, "<time>.<body>")>`).

Tests drive it directly too: `pay`, `expire`, `complete_onboarding` and
`refund_in_dashboard` change its state as a customer or Stripe would, each
returning the event Stripe would send; `signed` signs an event for posting
with Django's test client; `fail_next` makes the next matching calls answer
with an error once (for retry tests); `calls` records every API request.

Run it by hand for development without Stripe keys:

    .venv/bin/python -m ticketing.stripe_standin --port 12111 \\
        --webhook-url http://127.0.0.1:8000/stripe/webhook/
"""

import argparse
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# The objects a `state_file` keeps.
KEPT_TABLES = ("sessions", "payment_intents", "charges", "refunds", "accounts", "account_links", "events")
API_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_standin"
API_VERSION = "2026-10-28.endive"


class StripeFailure(Exception):
    """An answer in Stripe's error shape."""

    def __init__(self, status: int, kind: str, message: str, *, code: str = "", param: str = ""):
        super().__init__(message)
        self.status, self.kind, self.message, self.code, self.param = status, kind, message, code, param

    def body(self) -> dict:
        error = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


@dataclass
class Call:
    """One API request the stand-in answered."""

    method: str
    path: str
    params: dict
    idempotency_key: str | None
    status: int
    replayed: bool = False


@dataclass
class _Failure:
    method: str
    path_prefix: str
    status: int
    kind: str
    times: int


@dataclass
class _State:
    sessions: dict = field(default_factory=dict)
    payment_intents: dict = field(default_factory=dict)
    charges: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    accounts: dict = field(default_factory=dict)
    account_links: dict = field(default_factory=dict)
    idempotent: dict = field(default_factory=dict)  # key -> (fingerprint, status, body)
    events: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    deliveries: list = field(default_factory=list)  # (event id, HTTP status or error)


def decode_form(body: str) -> dict:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(node):
    if isinstance(node, dict):
        node = {key: _listify(value) for key, value in node.items()}
        if node and all(key.isdigit() for key in node):
            return [node[key] for key in sorted(node, key=int)]
    return node


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends with `payload`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class StripeStandin:
    """The stand-in server: `start()` it, point `STRIPE_API_BASE` at `url`, `stop()` it."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        webhook_secret: str = WEBHOOK_SECRET,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
    ):
        self.api_key, self.webhook_secret, self.webhook_url = api_key, webhook_secret, webhook_url
        self.lock = threading.RLock()
        self.state = _State()
        # Kept across restarts when given (demo payments: the site's database remembers these ids).
        self.state_file = state_file
        if state_file is not None and state_file.exists():
            saved = json.loads(state_file.read_text())
            for table in KEPT_TABLES:
                setattr(self.state, table, saved.get(table, getattr(self.state, table)))
        standin = self

        class Handler(_Handler):
            pass

        Handler.standin = standin
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    # Running

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "StripeStandin":
        self.thread = threading.Thread(target=self.server.serve_forever, name="stripe-standin", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def save(self) -> None:
        """Write the objects (not the calls or deliveries) to `state_file`, if there is one."""
        if self.state_file is None:
            return
        with self.lock:
            text = json.dumps({table: getattr(self.state, table) for table in KEPT_TABLES})
        partial = self.state_file.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(self.state_file)

    def reset(self) -> None:
        """Forget everything (between tests)."""
        with self.lock:
            self.state = _State()
            self.webhook_url = None

    def __enter__(self) -> "StripeStandin":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # What tests look at

    def calls(self, method: str | None = None, path_prefix: str = "") -> list[Call]:
        with self.lock:
            return [
                c for c in self.state.calls if (method is None or c.method == method) and c.path.startswith(path_prefix)
            ]

    def session(self, session_id: str) -> dict:
        with self.lock:
            return copy.deepcopy(self.state.sessions[session_id])

    def sessions(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(list(self.state.sessions.values()))

    def refunds(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(list(self.state.refunds.values()))

    def events(self, type_: str | None = None) -> list[dict]:
        with self.lock:
            return copy.deepcopy([e for e in self.state.events if type_ is None or e["type"] == type_])

    @property
    def deliveries(self) -> list[tuple[str, object]]:
        with self.lock:
            return list(self.state.deliveries)

    def fail_next(
        self, method: str, path_prefix: str, *, status: int = 500, kind: str = "api_error", times: int = 1
    ) -> None:
        """The next `times` calls to `method path_prefix…` fail with Stripe's error shape and
        `Stripe-Should-Retry: false`, so the library gives up at once and our own retry is what's tested."""
        with self.lock:
            self.state.failures.append(_Failure(method, path_prefix, status, kind, times))

    # What customers and Stripe do

    def pay(self, session_id: str, *, deliver: bool = False) -> dict:
        """The customer pays an open session: a payment intent and a charge appear; returns the event."""
        with self.lock:
            session = self.state.sessions.get(session_id)
            if session is None or session["status"] != "open":
                raise StripeFailure(400, "invalid_request_error", f"Session {session_id} can't be paid.")
            data = session["_payment_intent_data"]
            amount = session["amount_total"]
            payment_intent_id, charge_id = _new_id("pi"), _new_id("ch")
            self.state.charges[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_refunded": 0,
                "currency": session["currency"],
                "paid": True,
                "payment_intent": payment_intent_id,
                "refunded": False,
                "status": "succeeded",
                "application_fee_amount": int(data.get("application_fee_amount", 0)),
                "transfer_data": data.get("transfer_data"),
                "metadata": {},
                "created": int(time.time()),
                "livemode": False,
            }
            self.state.payment_intents[payment_intent_id] = {
                "id": payment_intent_id,
                "object": "payment_intent",
                "amount": amount,
                "currency": session["currency"],
                "status": "succeeded",
                "latest_charge": charge_id,
                "application_fee_amount": int(data.get("application_fee_amount", 0)),
                "transfer_data": data.get("transfer_data"),
                "metadata": data.get("metadata", {}),
                "description": data.get("description"),
                "livemode": False,
            }
            session.update(status="complete", payment_status="paid", payment_intent=payment_intent_id)
            event = self._event("checkout.session.completed", self._public(session))
        if deliver:
            self.deliver(event)
        return event

    def expire(self, session_id: str, *, deliver: bool = False) -> dict:
        """Stripe expires an open session (its time ran out); returns the event."""
        with self.lock:
            event = self._expire(session_id)
        if deliver:
            self.deliver(event)
        return event

    def complete_onboarding(self, account_id: str, *, deliver: bool = False) -> dict:
        """The creator finishes Connect onboarding: the account may take charges; returns `account.updated`."""
        with self.lock:
            account = self.state.accounts[account_id]
            account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
            event = self._event("account.updated", copy.deepcopy(account), account=account_id)
        if deliver:
            self.deliver(event)
        return event

    def set_account(self, account_id: str, **flags) -> dict:
        """Change an account's flags as Stripe might (e.g. `charges_enabled=False`); returns `account.updated`."""
        with self.lock:
            account = self.state.accounts[account_id]
            account.update(flags)
            return self._event("account.updated", copy.deepcopy(account), account=account_id)

    def refund_in_dashboard(self, payment_intent_id: str) -> dict:
        """Someone refunds the payment in Stripe's dashboard; returns `charge.refunded`."""
        with self.lock:
            _, event = self._refund({"payment_intent": payment_intent_id, "metadata": {"source": "dashboard"}})
            return event

    def signed(self, event: dict, *, secret: str | None = None) -> tuple[bytes, str]:
        """The body and `Stripe-Signature` header Stripe would send for `event`."""
        payload = json.dumps(event)
        return payload.encode(), sign(payload, secret or self.webhook_secret)

    def deliver(self, event: dict, url: str | None = None) -> int | str:
        """POST the signed event to the webhook URL, as Stripe does; returns the HTTP status (or the error)."""
        body, signature = self.signed(event)
        request = urllib.request.Request(
            url or self.webhook_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                outcome: int | str = response.status
        except urllib.error.HTTPError as error:
            outcome = error.code
        except OSError as error:
            outcome = f"{type(error).__name__}: {error}"
        with self.lock:
            self.state.deliveries.append((event["id"], outcome))
        return outcome

    # Internals (called with the lock held)

    def _event(self, type_: str, obj: dict, *, account: str | None = None) -> dict:
        event = {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        if account:
            event["account"] = account
        self.state.events.append(event)
        return copy.deepcopy(event)

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    def _expire(self, session_id: str) -> dict:
        session = self._get(self.state.sessions, session_id, "checkout.session")
        if session["status"] != "open":
            raise StripeFailure(
                400,
                "invalid_request_error",
                f'Only Checkout Sessions with a status in ["open"] can be expired; {session_id} is '
                f"{session['status']}.",
                code="checkout_session_not_open",
            )
        session["status"] = "expired"
        return self._event("checkout.session.expired", self._public(session))

    def _refund(self, params: dict) -> tuple[dict, dict]:
        if params.get("payment_intent"):
            intent = self._get(self.state.payment_intents, params["payment_intent"], "payment_intent", "payment_intent")
            charge = self.state.charges[intent["latest_charge"]]
        elif params.get("charge"):
            charge = self._get(self.state.charges, params["charge"], "charge", "charge")
        else:
            raise StripeFailure(400, "invalid_request_error", "Give a charge or a payment_intent.", param="charge")
        if charge["refunded"]:
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        if not 0 < amount <= left:
            raise StripeFailure(400, "invalid_request_error", f"Refund amount must be 1 to {left}.", param="amount")
        refund = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": charge["payment_intent"],
            "metadata": params.get("metadata", {}),
            "reason": params.get("reason"),
            "status": "succeeded",
            "created": int(time.time()),
            "_reverse_transfer": params.get("reverse_transfer") == "true",
            "_refund_application_fee": params.get("refund_application_fee") == "true",
        }
        self.state.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return refund, self._event("charge.refunded", copy.deepcopy(charge))

    def _get(self, table: dict, object_id: str, kind: str, param: str = "id") -> dict:
        if object_id not in table:
            raise StripeFailure(
                404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param
            )
        return table[object_id]

    # The API

    def api(self, method: str, path: str, params: dict, key: str | None) -> tuple[int, dict]:
        """Answer one API call (with the lock held): the routes Stripe has, for the calls we make."""
        routes = [
            ("POST", r"/v1/checkout/sessions", self._session_create),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", self._session_retrieve),
            ("POST", r"/v1/checkout/sessions/(?P<id>[^/]+)/expire", self._session_expire),
            ("POST", r"/v1/refunds", self._refund_create),
            ("GET", r"/v1/charges/(?P<id>[^/]+)", self._charge_retrieve),
            ("GET", r"/v1/payment_intents/(?P<id>[^/]+)", self._payment_intent_retrieve),
            ("POST", r"/v1/accounts", self._account_create),
            ("GET", r"/v1/accounts/(?P<id>[^/]+)", self._account_retrieve),
            ("POST", r"/v1/account_links", self._account_link_create),
        ]
        for route_method, pattern, answer in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return 200, answer(params, **match.groupdict())
        raise StripeFailure(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _session_create(self, params: dict) -> dict:
        if params.get("mode") != "payment":
            raise StripeFailure(
                400, "invalid_request_error", "This stand-in makes payment sessions only.", param="mode"
            )
        for name in ("success_url", "cancel_url"):
            if not params.get(name, "").startswith(("http://", "https://")):
                raise StripeFailure(400, "invalid_request_error", f"Not a valid URL: {name}.", param=name)
        items = params.get("line_items") or []
        if len(items) != 1 or "price_data" not in items[0]:
            raise StripeFailure(400, "invalid_request_error", "Give one line item with price_data.", param="line_items")
        price = items[0]["price_data"]
        quantity = int(items[0].get("quantity", 1))
        amount = int(price["unit_amount"]) * quantity
        now = int(time.time())
        expires_at = int(params.get("expires_at", now + 86400))
        if not now + 30 * 60 <= expires_at <= now + 24 * 3600:
            raise StripeFailure(
                400,
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        intent = params.get("payment_intent_data", {})
        destination = (intent.get("transfer_data") or {}).get("destination")
        if destination is not None:
            account = self._get(self.state.accounts, destination, "account", "payment_intent_data[transfer_data]")
            if not account["charges_enabled"]:
                raise StripeFailure(
                    400, "invalid_request_error", f"The destination account {destination} can't take charges yet."
                )
        if int(intent.get("application_fee_amount", 0)) > amount:
            raise StripeFailure(400, "invalid_request_error", "The application fee exceeds the amount.")
        session_id = _new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params["cancel_url"],
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": price["currency"],
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"{self.url}/c/pay/{session_id}",
            "_payment_intent_data": intent,
            "_product": price.get("product_data", {}),
        }
        self.state.sessions[session_id] = session
        return self._public(session)

    def _session_retrieve(self, params: dict, id: str) -> dict:
        return self._public(self._get(self.state.sessions, id, "checkout.session"))

    def _session_expire(self, params: dict, id: str) -> dict:
        self._expire(id)
        return self._public(self.state.sessions[id])

    def _refund_create(self, params: dict) -> dict:
        refund, _ = self._refund(params)
        self._push(self.state.events[-1])
        return self._public(refund)

    def _charge_retrieve(self, params: dict, id: str) -> dict:
        return copy.deepcopy(self._get(self.state.charges, id, "charge"))

    def _payment_intent_retrieve(self, params: dict, id: str) -> dict:
        return copy.deepcopy(self._get(self.state.payment_intents, id, "payment_intent"))

    def _account_create(self, params: dict) -> dict:
        if params.get("type") != "express":
            raise StripeFailure(400, "invalid_request_error", "This stand-in makes Express accounts.", param="type")
        account = {
            "id": _new_id("acct"),
            "object": "account",
            "type": "express",
            "country": params.get("country", "US"),
            "email": params.get("email"),
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "capabilities": dict.fromkeys(params.get("capabilities", {}), "inactive"),
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        }
        self.state.accounts[account["id"]] = account
        return copy.deepcopy(account)

    def _account_retrieve(self, params: dict, id: str) -> dict:
        return copy.deepcopy(self._get(self.state.accounts, id, "account"))

    def _account_link_create(self, params: dict) -> dict:
        self._get(self.state.accounts, params.get("account", ""), "account", "account")
        for name in ("return_url", "refresh_url"):
            if not params.get(name, "").startswith(("http://", "https://")):
                raise StripeFailure(400, "invalid_request_error", f"Not a valid URL: {name}.", param=name)
        link_id = secrets.token_hex(8)
        self.state.account_links[link_id] = params
        now = int(time.time())
        return {"object": "account_link", "created": now, "expires_at": now + 300, "url": f"{self.url}/setup/{link_id}"}

    def _push(self, event: dict) -> None:
        """Send an event caused by an API call to the webhook URL, later and from another thread, as Stripe does."""
        if self.webhook_url:
            threading.Thread(target=self.deliver, args=(copy.deepcopy(event),), daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    standin: StripeStandin
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the second waited for the client's
    # delayed ACK, about 40 ms on every call of a kept-alive connection (Stripe answers in one go).
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
        headers = {"Request-Id": _new_id("req"), "Stripe-Version": API_VERSION, **(headers or {})}
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, method: str) -> None:
        try:
            self._answer(method)
        finally:
            if method != "GET":
                self.standin.save()

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        if parts.path.startswith("/v1/"):
            self._api(method, parts.path, body or parts.query)
        elif match := re.fullmatch(r"/c/pay/(?P<id>[^/]+)", parts.path):
            self._checkout_page(method, match["id"])
        elif match := re.fullmatch(r"/setup/(?P<id>[^/]+)", parts.path):
            self._onboarding_page(method, match["id"])
        else:
            self._send(404, b"Not found", "text/plain")

    def _api(self, method: str, path: str, encoded: str) -> None:
        standin = self.standin
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        params = decode_form(encoded)
        if self.headers.get("Authorization") != f"Bearer {standin.api_key}":
            failure = StripeFailure(401, "invalid_request_error", "Invalid API Key provided.")
            self._json(failure.status, failure.body())
            return
        with standin.lock:
            state = standin.state
            fingerprint = (method, path, encoded)
            if key and key in state.idempotent:
                first, status, answer = state.idempotent[key]
                if first != fingerprint:
                    status, answer = (
                        400,
                        StripeFailure(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try a key other than '{key}' if you meant a different request.",
                        ).body(),
                    )
                state.calls.append(Call(method, path, params, key, status, replayed=True))
                self._json(status, answer, {"Idempotent-Replayed": "true"})
                return
            failure = next(
                (f for f in state.failures if f.method == method and path.startswith(f.path_prefix) and f.times > 0),
                None,
            )
            if failure is not None:
                failure.times -= 1
                error = StripeFailure(failure.status, failure.kind, "An error occurred with our connection to Stripe.")
                state.calls.append(Call(method, path, params, key, failure.status))
                self._json(failure.status, error.body(), {"Stripe-Should-Retry": "false"})
                return
            try:
                status, answer = standin.api(method, path, params, key)
            except StripeFailure as failure:
                status, answer = failure.status, failure.body()
            except (KeyError, ValueError, TypeError) as error:
                status, answer = 400, StripeFailure(400, "invalid_request_error", f"Invalid request: {error}").body()
            if key and status < 500:
                state.idempotent[key] = (fingerprint, status, answer)
            state.calls.append(Call(method, path, params, key, status))
        self._json(status, answer)

    def _checkout_page(self, method: str, session_id: str) -> None:
        standin = self.standin
        with standin.lock:
            session = copy.deepcopy(standin.state.sessions.get(session_id))
        if session is None:
            self._send(404, b"No such checkout", "text/plain")
            return
        if method == "POST" and session["status"] == "open":
            event = standin.pay(session_id)
            if standin.webhook_url:
                standin.deliver(event)
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
            self._send(303, b"", "text/plain", {"Location": target})
            return
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        name = html.escape(session["_product"].get("name", "Ticket"))
        if session["status"] == "open":
            action = (
                f'<form method="post"><button type="submit" style="font-size:1.1rem;padding:.6rem 1.4rem">'
                f"Pay {amount}</button></form>"
                f'<p><a href="{html.escape(session["cancel_url"])}">Back</a></p>'
            )
        else:
            action = f"<p>This checkout is {session['status']}.</p>"
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>Checkout · {name}</title></head>"
            '<body style="font-family:system-ui;max-width:28rem;margin:2rem auto">'
            "<p><strong>Demo payments — no real money</strong> <small>(Stripe stand-in, test mode)</small></p>"
            f"<h1>{name}</h1><p data-amount>{amount}</p>{action}</body></html>"
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _onboarding_page(self, method: str, link_id: str) -> None:
        standin = self.standin
        with standin.lock:
            link = copy.deepcopy(standin.state.account_links.get(link_id))
        if link is None:
            self._send(404, b"No such link", "text/plain")
            return
        if method == "POST":
            event = standin.complete_onboarding(link["account"])
            if standin.webhook_url:
                standin.deliver(event)
            self._send(303, b"", "text/plain", {"Location": link["return_url"]})
            return
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Connect onboarding</title></head>"
            '<body style="font-family:system-ui;max-width:28rem;margin:2rem auto">'
            "<p><strong>Demo payments — no real money</strong> <small>(Stripe stand-in, test mode)</small></p>"
            f"<h1>Get paid</h1><p>Account {link['account']}</p>"
            '<form method="post"><button type="submit">Finish onboarding</button></form>'
            f'<p><a href="{html.escape(link["refresh_url"])}">Start again</a></p></body></html>'
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Stripe stand-in on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--webhook-secret", default=WEBHOOK_SECRET)
    parser.add_argument("--webhook-url", default=None, help="where to send signed events, e.g. our /stripe/webhook/")
    parser.add_argument("--state-file", type=Path, default=None, help="keep the objects in this JSON file")
    args = parser.parse_args()
    standin = StripeStandin(
        api_key=args.api_key,
        webhook_secret=args.webhook_secret,
        webhook_url=args.webhook_url,
        port=args.port,
        state_file=args.state_file,
    )
    print(f"Stripe stand-in at {standin.url}: STRIPE_API_BASE={standin.url} STRIPE_SECRET_KEY={args.api_key} ")
    print(f"STRIPE_WEBHOOK_SECRET={args.webhook_secret}", flush=True)
    standin.server.serve_forever()


if __name__ == "__main__":
    main()
