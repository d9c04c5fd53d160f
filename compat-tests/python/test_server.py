"""Server/observability endpoints and API-key security, through waha-py and raw HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import time

import httpx
import pytest
import requests
from waha import models

from conftest import sdk_validate

UNAUTHORIZED = {"message": "Unauthorized", "statusCode": 401}


# --------------------------------------------------------------------------- ping / health


def test_ping_through_sdk(client):
    assert client.ping.ping() == {"message": "pong"}
    sdk_validate(models.PingResponse, client.ping.ping())


def test_ping_is_public(server):
    r = requests.get(server.url("/ping"), timeout=10)
    assert r.status_code == 200
    assert r.json() == {"message": "pong"}
    r = requests.get(server.url("/ping"), headers={"X-Api-Key": "wrong"}, timeout=10)
    assert r.status_code == 200, "a wrong key must not break the public /ping"


def test_health(client, server):
    body = client.health.check()
    assert isinstance(body, dict), body
    assert body["status"] == "ok", body
    assert isinstance(body.get("details"), dict), body
    # /health needs the key (only /ping is public)
    r = requests.get(server.url("/health"), timeout=10)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_health_reports_the_store(start_server, store):
    srv = start_server()
    body = srv.get("/health").json()
    assert body["status"] == "ok", body
    if store == "mongo":
        assert body["details"]["mongodb"] == {"status": "up", "message": "Up and running"}, body
        assert body["info"]["mongodb"]["status"] == "up", body
    assert all(v.get("status") == "up" for v in body["details"].values()), body
    assert body["error"] == {}, body


def test_health_disk_space_indicators(start_server, store):
    srv = start_server()
    body = srv.get("/health").json()
    details = body["details"]
    expected = {"mediaFiles.space"} | ({"sessionsFiles.space"} if store == "embedded" else {"mongodb"})
    assert set(details) == expected, body
    assert body["info"] == details, body
    for key in expected - {"mongodb"}:
        indicator = details[key]
        assert indicator["status"] == "up", body
        assert type(indicator["free"]) is int and indicator["free"] > 0, body
        assert indicator["threshold"] == 100 * 1024 * 1024, body
        assert isinstance(indicator["diskPath"], str) and indicator["diskPath"].startswith("/"), body
    if store == "embedded":
        assert details["sessionsFiles.space"]["path"] == srv.env["WAHA_LOCAL_STORE_BASE_DIR"], body


def test_api_key_exclude_path(start_server):
    srv = start_server(WAHA_API_KEY_EXCLUDE_PATH="health,api/server/version")
    assert requests.get(srv.url("/health"), timeout=10).status_code == 200
    assert requests.get(srv.url("/api/server/version"), timeout=10).status_code == 200
    r = requests.get(srv.url("/api/server/status"), timeout=10)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    r = requests.get(srv.url("/api/sessions"), timeout=10)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_whatsapp_api_key_alias(start_server):
    key = "w" + "0123456789abcdef" * 2
    srv = start_server(api_key=key, WAHA_API_KEY=None, WHATSAPP_API_KEY=key)
    assert srv.get("/api/sessions").json() == []
    r = requests.get(srv.url("/api/sessions"), headers={"X-Api-Key": "wrong"}, timeout=10)
    assert r.status_code == 401


def test_whatsapp_api_port(start_server):
    srv = start_server(_WHARF_PORT_VAR="WHATSAPP_API_PORT")
    assert "PORT" not in srv.env
    assert srv.get("/api/sessions").json() == []


def test_json_log_format(start_server):
    srv = start_server(WAHA_LOG_FORMAT="JSON", WAHA_LOG_LEVEL="info")
    srv.get("/api/sessions")
    srv.stop()
    lines = []
    for line in srv.log_paths[-1].read_text().splitlines():
        if "panicked at" in line:
            break  # a Rust panic report is not a log record (conftest lists panics)
        if line.strip():
            lines.append(line)
    assert lines, "no log output at all"
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict) and "level" in record, line


# --------------------------------------------------------------------------- version / status


def _check_environment(env: dict, engine: str) -> None:
    sdk_validate(models.WAHAEnvironment, env)
    assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", env["version"]), env
    assert env["engine"] == engine, env
    assert isinstance(env["tier"], str) and env["tier"], env
    assert isinstance(env["platform"], str) and "/" in env["platform"], env
    assert isinstance(env["worker"], dict) and "id" in env["worker"], env


def test_server_version(client):
    env = client.server.get()
    _check_environment(env, "GOWS")
    assert client.version.get() == env, "deprecated /api/version must equal /api/server/version"


@pytest.mark.parametrize("engine", ["NOWEB", "WEBJS"])
def test_default_engine_is_reported(start_server, engine):
    srv = start_server(WHATSAPP_DEFAULT_ENGINE=engine)
    c = srv.client()
    try:
        _check_environment(c.server.get(), engine)
    finally:
        c.close()


def test_server_status(client):
    before = time.time() * 1000
    status = client.server.status()
    sdk_validate(models.ServerStatusResponse, status)
    now = time.time() * 1000
    assert 0 <= status["uptime"] < 10 * 60 * 1000, status
    assert now - 10 * 60 * 1000 < status["startTimestamp"] <= now + 1000, status
    # start + uptime is "now" (within a generous margin)
    assert abs(status["startTimestamp"] + status["uptime"] - before) < 5000, status
    later = client.server.status()
    assert later["startTimestamp"] == status["startTimestamp"]
    assert later["uptime"] >= status["uptime"]


def test_worker_id_is_reported(start_server):
    srv = start_server(WAHA_WORKER_ID="worker-7")
    c = srv.client()
    try:
        assert c.server.status()["worker"] == {"id": "worker-7"}
        assert c.server.get()["worker"] == {"id": "worker-7"}
    finally:
        c.close()


# --------------------------------------------------------------------------- environment


def test_environment_filters_and_redacts(start_server):
    srv = start_server(CT_UNRELATED_VARIABLE="plain-value", WAHA_LOG_FORMAT="JSON")
    c = srv.client()
    try:
        env = c.server.environment()
        assert isinstance(env, dict), env
        assert srv.api_key not in json.dumps(env), "the API key leaked through /api/server/environment"
        assert list(env) == sorted(env), "WAHA sorts the environment by key"
        assert all(k.startswith(("WAHA_", "WHATSAPP_", "DEBUG")) for k in env), sorted(env)
        assert env.get("WAHA_LOG_FORMAT") == "JSON", env
        assert env.get("WAHA_LOCAL_STORE_BASE_DIR") == srv.env["WAHA_LOCAL_STORE_BASE_DIR"], env
        assert "CT_UNRELATED_VARIABLE" not in env

        full = c.server.environment({"all": True})
        assert isinstance(full, dict), full
        assert full.get("CT_UNRELATED_VARIABLE") == "plain-value"
        assert srv.api_key not in json.dumps(full), "the API key leaked through ?all=true"
    finally:
        c.close()


def test_environment_redacts_hashed_key(start_server):
    plain = "k" + "0123456789abcdef" * 2
    digest = hashlib.sha512(plain.encode()).hexdigest()
    srv = start_server(api_key=plain, env_api_key=f"sha512:{digest}")
    r = srv.get("/api/server/environment?all=true")
    assert r.status_code == 200, r.text
    assert digest not in r.text and plain not in r.text


# --------------------------------------------------------------------------- stop


def test_server_stop_through_sdk(server):
    c = server.client()
    server.expected_exit = True
    try:
        assert c.server.stop({"force": False}) == {"stopping": True}
    finally:
        c.close()
    proc = server.proc
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is not None, "wharf still running 15 s after POST /api/server/stop"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url("/ping"), timeout=2)


def test_server_stop_status_code(server):
    server.expected_exit = True
    r = server.post("/api/server/stop", json={"force": False})
    assert r.status_code == 201, r.text
    assert r.json() == {"stopping": True}


def test_sigterm_stops_gracefully(server):
    started = time.monotonic()
    code = server.stop()
    assert time.monotonic() - started < 10, "wharf needed SIGKILL after SIGTERM"
    assert code == 0, f"exit code after SIGTERM: {code}"


# --------------------------------------------------------------------------- API key


@pytest.mark.parametrize(
    "path", ["/api/sessions", "/api/sessions/default", "/api/server/version", "/api/version", "/api/server/status"]
)
def test_missing_key_is_401(server, path):
    r = requests.get(server.url(path), timeout=10)
    assert r.status_code == 401, f"{path}: {r.status_code} {r.text!r}"
    assert r.json() == UNAUTHORIZED


def test_wrong_key_is_401(server):
    for key in ("wrong", server.api_key.upper(), server.api_key + "x", server.api_key[:-1]):
        r = requests.get(server.url("/api/sessions"), headers={"X-Api-Key": key}, timeout=10)
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED), key
    r = requests.post(server.url("/api/sessions"), json={"name": "x"}, headers={"X-Api-Key": "wrong"}, timeout=10)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)
    # and nothing was created
    assert server.get("/api/sessions?all=true").json() == []


def test_sdk_with_wrong_key_raises_401(server):
    c = server.client(api_key="not-the-key")
    try:
        with pytest.raises(httpx.HTTPStatusError) as info:
            c.sessions.list()
        assert info.value.response.status_code == 401
        assert info.value.response.json() == UNAUTHORIZED
        assert c.ping.ping() == {"message": "pong"}
    finally:
        c.close()


@pytest.mark.parametrize("header", ["X-Api-Key", "x-api-key", "X-API-KEY", "x-Api-kEY"])
def test_key_header_any_case(server, header):
    r = requests.get(server.url("/api/sessions"), headers={header: server.api_key}, timeout=10)
    assert r.status_code == 200, f"{header}: {r.status_code} {r.text!r}"
    assert r.json() == []


def test_key_in_query(server):
    r = requests.get(server.url("/api/sessions"), params={"x-api-key": server.api_key, "all": "true"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == []
    r = requests.get(server.url("/api/sessions"), params={"x-api-key": "wrong"}, timeout=10)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_header_wins_over_query(server):
    r = requests.get(
        server.url("/api/sessions"),
        params={"x-api-key": "wrong"},
        headers={"X-Api-Key": server.api_key},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_sha512_key(start_server):
    plain = "p" + "fedcba9876543210" * 2
    digest = hashlib.sha512(plain.encode()).hexdigest()
    srv = start_server(api_key=plain, env_api_key=f"sha512:{digest}")
    c = srv.client()
    try:
        assert c.sessions.list() == []
    finally:
        c.close()
    for wrong in (digest, f"sha512:{digest}", "wrong"):
        r = requests.get(srv.url("/api/sessions"), headers={"X-Api-Key": wrong}, timeout=10)
        assert (r.status_code, r.json()) == (401, UNAUTHORIZED), wrong


def test_no_api_key_mode(start_server):
    srv = start_server(api_key=None, WAHA_NO_API_KEY="true", WAHA_API_KEY="")
    r = requests.get(srv.url("/api/sessions"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == []
    c = srv.client(api_key=None)
    try:
        assert c.sessions.create({"name": "open", "start": False})["status"] == "STOPPED"
        assert [s["name"] for s in c.sessions.list({"all": True})] == ["open"]
    finally:
        c.close()


@pytest.mark.parametrize("weak", ["123", "admin", "waha", "0" * 32])
def test_weak_key_is_replaced(start_server, weak):
    """WAHA replaces weak keys with a random one: the weak value must not open the API."""
    srv = start_server(api_key=weak)
    r = requests.get(srv.url("/api/sessions"), headers={"X-Api-Key": weak}, timeout=10)
    assert (r.status_code, r.json()) == (401, UNAUTHORIZED)


def test_unknown_route_is_nest_404(server):
    r = server.get("/api/no-such-route")
    assert r.status_code == 404
    assert r.json() == {"message": "Cannot GET /api/no-such-route", "error": "Not Found", "statusCode": 404}


# --------------------------------------------------------------------------- CORS


def test_cors_preflight_and_headers(server):
    """WAHA enables CORS for all origins; browsers send the preflight without the key."""
    origin = "http://dashboard.example"
    r = requests.options(
        server.url("/api/sessions"),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key,content-type",
        },
        timeout=10,
    )
    assert r.status_code in (200, 204), f"preflight: {r.status_code} {r.text!r}"
    assert r.headers.get("access-control-allow-origin") in ("*", origin), dict(r.headers)
    r = server.get("/api/sessions", headers={**server.headers(), "Origin": origin})
    assert r.status_code == 200
    assert r.headers.get("access-control-allow-origin") in ("*", origin), dict(r.headers)


# --------------------------------------------------------------------------- OpenAPI / Swagger


def test_openapi_document(server):
    r = requests.get(server.url("/-json"), headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text[:500]
    doc = r.json()
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    assert doc["components"]["securitySchemes"]["api_key"] == {
        **doc["components"]["securitySchemes"]["api_key"],
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
    }
    paths = doc["paths"]
    for p in ("/api/sessions", "/api/sessions/{session}", "/api/sessions/{session}/start", "/ping"):
        assert p in paths, f"{p} missing from /-json"
    assert "post" in paths["/api/sessions"] and "get" in paths["/api/sessions"]


def test_swagger_ui(server):
    r = requests.get(server.url("/"), headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html"), r.headers
    assert "swagger-ui" in r.text.lower()


# --------------------------------------------------------------------------- /metrics


def test_metrics_parse_with_prometheus_openmetrics_parser(server, client):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    assert requests.get(server.url("/metrics"), timeout=10).status_code == 401
    client.ping.ping()
    r = requests.get(server.url("/metrics"), headers=server.headers(), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/openmetrics-text"), r.headers
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    # Families with no series yet (messages, webhooks, sessions on a fresh server) have
    # no samples; the Rust e2e test makes those move.
    for name in (
        "wharf_http_requests",
        "wharf_http_request_duration_seconds",
        "wharf_engine_reconnects",
        "wharf_process_resident_memory_bytes",
        "wharf_process_cpu_milliseconds",
        "wharf_process_open_fds",
    ):
        assert name in families, sorted(families)
    rss = families["wharf_process_resident_memory_bytes"].samples[0].value
    assert rss > 1_000_000, rss
    routes = {s.labels.get("route") for s in families["wharf_http_requests"].samples}
    assert "/ping" in routes, routes


def test_grafana_dashboard_queries_name_served_metrics(server, client):
    """docker/grafana-dashboard.json only queries metrics /metrics serves (the
    `wharf_cluster_*` ones: in cluster mode, see the next test)."""
    client.ping.ping()
    served = _served_metric_names(server)
    queried = {m for m in _grafana_queried_metrics() if not m.startswith("wharf_cluster_")}
    assert queried, "the dashboard queries nothing"
    missing = sorted(queried - served)
    assert not missing, f"the dashboard queries metrics /metrics does not serve: {missing}"


def test_grafana_cluster_panel_queries_served_cluster_metrics(store, start_server):
    """The dashboard's cluster panel queries only what a cluster-mode worker serves."""
    if store != "mongo":
        pytest.skip("cluster mode needs the MongoDB store")
    server = start_server(WHARF_CLUSTER="true", WHARF_CLUSTER_SECRET="grafana-cluster-secret-01")
    served = _served_metric_names(server)
    queried = {m for m in _grafana_queried_metrics() if m.startswith("wharf_cluster_")}
    assert queried, "the dashboard has no cluster panel"
    missing = sorted(queried - served)
    assert not missing, f"the cluster panel queries metrics /metrics does not serve: {missing}"


def _grafana_queried_metrics() -> set[str]:
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "docker" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried.update(re.findall(r"\bwharf_[a-z_]+", target["expr"]))
    return queried


def _served_metric_names(server) -> set[str]:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    r = requests.get(server.url("/metrics"), headers=server.headers(), timeout=10)
    assert r.status_code == 200, r.text
    served = set()
    for f in text_string_to_metric_families(r.text):
        served.add(f.name)
        # Sample names carry the suffixes PromQL uses (_total, _bucket, _sum, _count).
        served.update(s.name for s in f.samples)
    # Families without series yet still have HELP/TYPE lines: take their names too.
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            served.add(name)
            if kind == "counter":
                served.add(name + "_total")
            if kind == "histogram":
                served.update({name + "_bucket", name + "_sum", name + "_count"})
    return served
