"""The OpenAPI document wharf serves at `/-json`: valid, and true to what wharf answers.

Two checks, each on both stores (the `server` fixture):

* `test_served_spec_is_valid_openapi_3_1`: `openapi-spec-validator` (a real OpenAPI 3.1
  validator) finds zero errors. Generated clients choke on what it rejects.
* `test_every_operation_answers_its_documented_schema`: a bounded property-based check.
  schemathesis generates a few valid requests per served operation from the document
  itself, sends them to the running binary, and checks every answer against the status's
  documented response schema and media type, and that nothing answers 500.

WAHA (and so wharf) documents only the success status of each operation; its errors
(400, 401, 404, 422) are WAHA's bodies, pinned byte for byte by `tests/e2e/errors.rs`.
So schemathesis's `status_code_conformance` check is off: it would fail on every
documented-by-WAHA-elsewhere error (a session that does not exist, a session that is not
WORKING, which no session here ever is). `response_schema_conformance` and
`content_type_conformance` only look at documented statuses, which is what this test is
about. Negative (schema-violating) requests are not generated: WAHA's class-validator
accepts and rejects things its own document does not describe (e.g. numbers for strings),
and those answers are pinned by the error tests instead.

Nothing leaves 127.0.0.1: the harness binds wharf to loopback and points its engine at a
closed loopback port, and `loopback_only` below rewrites every generated session
config so that wharf never calls out (webhook URLs, proxy).

Bounds: `WHARF_SCHEMA_EXAMPLES` examples per operation (default 8), a per-request timeout and
a `WHARF_SCHEMA_BUDGET_SECONDS` cap per store (default 240); about a minute per store.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

EXAMPLES = int(os.environ.get("WHARF_SCHEMA_EXAMPLES", "8"))
REQUEST_TIMEOUT_S = 30.0  # above the 15 s QR wait, should a generated name hit a session
# A wall-clock cap for the whole property-based run on one store: requests stop once it
# is spent, and the test fails (raise it, or lower the examples, rather than skip cases).
BUDGET_S = float(os.environ.get("WHARF_SCHEMA_BUDGET_SECONDS", "240"))

# Operations not exercised, and why.
EXCLUDED = {
    # Stops the server under test: every later operation would fail to connect.
    # Covered by tests/e2e/observability.rs::server_stop_answers_201_then_stops_gracefully.
    ("POST", "/api/server/stop"),
}


def served_spec(server) -> dict:
    r = requests.get(server.url("/-json"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_served_spec_is_valid_openapi_3_1(server):
    spec = served_spec(server)
    assert spec["openapi"].startswith("3.1"), spec["openapi"]
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message.splitlines()[0][:300]}"
        for e in OpenAPIV31SpecValidator(spec).iter_errors()
    ]
    assert not errors, f"{len(errors)} OpenAPI 3.1 errors in /-json:\n" + "\n".join(errors)


# --------------------------------------------------------------------------- loopback only


def _closed_loopback_url() -> str:
    """A loopback URL nobody listens on: webhook deliveries fail fast and stay local."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/schemathesis-hook"


HOOK_URL = _closed_loopback_url()


def _loopback_only(config):
    """Session configs may name URLs wharf calls: webhooks (`config.webhooks[].url`) and
    the engine's proxy (`config.proxy`). Generated values could be any host, so webhook
    URLs become a closed loopback port and the proxy is dropped. Generated retry policies
    go too (WAHA's defaults apply): a zero delay with a huge attempt count would only
    keep a CPU busy with refused connections."""
    if not isinstance(config, dict):
        return config
    config = dict(config)
    config.pop("proxy", None)
    hooks = config.get("webhooks")
    if isinstance(hooks, list):
        config["webhooks"] = [
            {**{k: v for k, v in h.items() if k != "retries"}, "url": HOOK_URL} if isinstance(h, dict) else h
            for h in hooks
        ]
    return config


def loopback_only(case) -> None:
    """Session create/update, and the deprecated upsert-and-start, carry `config`."""
    if isinstance(case.body, dict) and "config" in case.body:
        case.body = {**case.body, "config": _loopback_only(case.body["config"])}


# --------------------------------------------------------------------------- property-based check


# Sessions that exist before the check, so that `{session}` routes answer with data and
# not only 404: one started (it never pairs: the engine's URL is a closed port) and one
# stopped. Generated requests name them half of the time.
KNOWN_SESSIONS = ("default", "stopped")
# Not pointed at the known sessions: on a STARTING session these wait up to 15 s for
# SCAN_QR_CODE (WAHA's wait), which never comes here; their success answers need a paired
# phone and are covered by tests/e2e/pairing.rs.
WAIT_FOR_QR = {("GET", "/api/{session}/auth/qr"), ("POST", "/api/{session}/auth/request-code")}


def ensure_known_sessions(server) -> None:
    """(Re)creates the known sessions; an earlier operation may have deleted them."""
    for name, start in zip(KNOWN_SESSIONS, (True, False)):
        r = server.post("/api/sessions", json={"name": name, "start": start})
        assert r.status_code in (201, 422), r.text  # 422: it exists


def test_every_operation_answers_its_documented_schema(server):
    schema = schemathesis.openapi.from_dict(served_spec(server))
    started = time.monotonic()
    failures: list[str] = []
    tested = []
    statuses: dict[str, Counter] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # an unloadable operation is itself a failure
        key = (operation.method.upper(), operation.path)
        if key in EXCLUDED:
            continue
        tested.append(key)
        ensure_known_sessions(server)
        documented = {str(code) for code in operation.definition.raw.get("responses", {})}

        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        if "{session}" in operation.path and key not in WAIT_FOR_QR:
            strategy = st.one_of(
                strategy,
                *(
                    operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters={"session": name})
                    for name in KNOWN_SESSIONS
                ),
            )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            if time.monotonic() - started > BUDGET_S:
                return
            loopback_only(case)
            response = case.call(base_url=server.base_url, headers=server.headers(), timeout=REQUEST_TIMEOUT_S)
            statuses.setdefault(operation.label, Counter())[response.status_code] += 1
            # A 5xx is a bug unless the operation documents it (`/health`'s 503 when a
            # disk or the database is down, as in WAHA).
            assert response.status_code < 500 or str(response.status_code) in documented, (
                f"{response.status_code} {response.text[:500]}"
            )
            case.validate_response(response, checks=[response_schema_conformance, content_type_conformance])

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (collect every operation's failure)
            parts = getattr(exc, "exceptions", None) or [exc]
            failures.append(f"{operation.label}:\n" + "\n".join(f"  - {str(e)[:1500]}" for e in parts))
    # What was exercised (`pytest -s` shows it): operation -> {status: requests}.
    for label, counts in statuses.items():
        print(f"{label}: {dict(sorted(counts.items()))}")
    assert len(tested) >= 30, f"only {len(tested)} operations in /-json: {tested}"
    assert time.monotonic() - started < BUDGET_S, f"the check ran out of its {BUDGET_S}s budget"
    assert not failures, f"{len(failures)} of {len(tested)} operations violate their own schema:\n\n" + "\n\n".join(
        failures
    )
