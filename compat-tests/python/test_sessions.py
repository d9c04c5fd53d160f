"""Session lifecycle through the real WAHA Python SDK (waha-py), plus raw HTTP for
what the SDK hides (status codes, exact error bodies).

Sessions cannot connect to WhatsApp in this milestone: a started session is
"not STOPPED" (STARTING, maybe FAILED later) - only STOPPED is asserted exactly.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from waha import AsyncWahaClient, models

from conftest import sdk_validate, strip_nulls

NOT_FOUND = {"message": "Session not found", "error": "Not Found", "statusCode": 404}

FULL_CONFIG = {
    "metadata": {"user.id": "123", "user.email": "email@example.com"},
    "proxy": {"server": "localhost:3128", "username": "proxy-user", "password": "proxy-pass"},
    "debug": True,
    "ignore": {"status": True, "groups": False, "channels": True, "broadcast": False},
    "client": {"deviceName": "MacOS", "browserName": "Firefox"},
    "noweb": {"markOnline": True, "store": {"enabled": True, "fullSync": False}},
    "gows": {"storage": {"messages": True, "groups": False, "chats": True, "labels": True}},
    "webjs": {"tagsEventsOn": False},
    "webhooks": [
        {
            "url": "http://127.0.0.1:9/webhooks/waha",
            "events": ["message", "session.status"],
            "hmac": {"key": "super-secret"},
            "retries": {"delaySeconds": 2, "attempts": 5, "policy": "linear"},
            "customHeaders": [{"name": "X-Request-ID", "value": "123"}],
        },
        {
            "url": "http://localhost:9/second",
            "events": ["*"],
            "retries": {"delaySeconds": 1, "attempts": 0, "policy": "exponential"},
        },
    ],
}

# Members WAHA's DTO classes fill in with their defaults when not sent.
DTO_DEFAULTS = {"debug": False}


@contextmanager
def http_error(status: int):
    """The SDK raises httpx.HTTPStatusError on non-2xx; check its status code."""
    with pytest.raises(httpx.HTTPStatusError) as info:
        yield info
    got = info.value.response.status_code
    assert got == status, f"expected HTTP {status}, got {got}: {info.value.response.text!r}"


def assert_config(sent: dict, got) -> None:
    """`got` holds exactly what was sent; anything else must be null or a DTO default."""
    assert isinstance(got, dict), f"config is {got!r}"
    got_clean = strip_nulls(got)
    sent_clean = strip_nulls(sent)
    for key, value in DTO_DEFAULTS.items():
        if key not in sent_clean and got_clean.get(key) == value:
            got_clean.pop(key)
    assert got_clean == sent_clean


def by_name(sessions: list) -> dict:
    assert isinstance(sessions, list), f"expected a list, got {sessions!r}"
    return {s["name"]: s for s in sessions}


def assert_session_info(info: dict, name: str, status: str | None = None) -> None:
    sdk_validate(models.SessionInfo, info)
    assert info["name"] == name
    for key in ("name", "status", "presence", "timestamps"):
        assert key in info, f"SessionInfo lacks required {key!r}: {info!r}"
    if status is not None:
        assert info["status"] == status, info
    assert info.get("me") is None, f"never-paired session has me={info.get('me')!r}"


# --------------------------------------------------------------------------- create / get


def test_create_stopped_with_full_config_roundtrips(client):
    created = client.sessions.create({"name": "alpha", "start": False, "config": FULL_CONFIG})
    sdk_validate(models.SessionDTO, created)
    assert created["name"] == "alpha"
    assert created["status"] == "STOPPED"
    assert_config(FULL_CONFIG, created["config"])

    got = client.sessions.get("alpha")
    assert_session_info(got, "alpha", "STOPPED")
    assert_config(FULL_CONFIG, got["config"])
    # GET /api/sessions/{s} also reports the engine ({} or {"engine": ...} when stopped).
    assert isinstance(got.get("engine"), dict), f"engine member: {got.get('engine')!r}"


def test_create_with_sdk_model_payload(client):
    """waha-py models dump every optional member as explicit null; wharf must accept that."""
    req = models.SessionCreateRequest(
        name="modelled",
        start=False,
        config=models.SessionConfig(
            metadata={"tenant": "t1"},
            proxy=models.ProxyConfig(server="proxy.local:8080"),
            ignore=models.IgnoreConfig(groups=True),
        ),
    )
    created = client.sessions.create(req)
    assert created["name"] == "modelled"
    assert created["status"] == "STOPPED"
    expected = {"metadata": {"tenant": "t1"}, "proxy": {"server": "proxy.local:8080"}, "ignore": {"groups": True}}
    assert_config(expected, created["config"])
    assert_config(expected, client.sessions.get("modelled")["config"])


def test_create_without_config(client):
    created = client.sessions.create({"name": "bare", "start": False})
    assert created["name"] == "bare"
    assert created["status"] == "STOPPED"
    got = client.sessions.get("bare")
    assert_session_info(got, "bare", "STOPPED")
    assert strip_nulls(got.get("config") or {}) in ({}, DTO_DEFAULTS)


def test_create_generates_name_when_omitted(client):
    created = client.sessions.create({"start": False})
    name = created["name"]
    assert re.fullmatch(r"session_[0-9a-f]{32}", name), name
    assert created["status"] == "STOPPED"
    assert_session_info(client.sessions.get(name), name, "STOPPED")
    other = client.sessions.create({"start": False})["name"]
    assert other != name


def test_create_starts_by_default(client):
    created = client.sessions.create({"name": "auto"})
    assert created["name"] == "auto"
    assert created["status"] != "STOPPED"
    assert client.sessions.get("auto")["status"] != "STOPPED"


def test_create_duplicate_is_422(client, server):
    client.sessions.create({"name": "dup", "start": False})
    with http_error(422) as info:
        client.sessions.create({"name": "dup", "start": False})
    assert info.value.response.json() == {
        "message": "Session 'dup' already exists. Use PUT to update it.",
        "error": "Unprocessable Entity",
        "statusCode": 422,
    }
    # the original is untouched
    assert client.sessions.get("dup")["status"] == "STOPPED"


def test_get_unknown_session_is_404(client):
    with http_error(404) as info:
        client.sessions.get("nope")
    assert info.value.response.json() == NOT_FOUND


def test_me_is_null_for_never_paired_session(client, server):
    client.sessions.create({"name": "lonely", "start": False})
    # NestJS answers a null handler result with an empty 200 body; JSON `null` is what
    # the spec describes. The SDK hands back "" or None respectively - never an object.
    me = client.sessions.get_me("lonely")
    assert me in (None, ""), f"/me for a never-paired session returned {me!r}"
    r = server.get("/api/sessions/lonely/me")
    assert r.status_code == 200
    assert r.text.strip() in ("", "null"), r.text
    client.sessions.start("lonely")
    assert client.sessions.get_me("lonely") in (None, "")


def test_me_unknown_session_is_404(client):
    with http_error(404) as info:
        client.sessions.get_me("ghost")
    assert info.value.response.json() == NOT_FOUND


# --------------------------------------------------------------------------- list


def test_list_all_includes_stopped_sessions(client):
    client.sessions.create({"name": "s1", "start": False, "config": {"metadata": {"n": "1"}}})
    client.sessions.create({"name": "s2", "start": False})
    client.sessions.create({"name": "run", "start": True})

    everything = by_name(client.sessions.list({"all": True}))
    assert set(everything) == {"s1", "s2", "run"}
    assert_session_info(everything["s1"], "s1", "STOPPED")
    assert_session_info(everything["s2"], "s2", "STOPPED")
    assert_session_info(everything["run"], "run")
    assert everything["run"]["status"] != "STOPPED"
    assert strip_nulls(everything["s1"]["config"])["metadata"] == {"n": "1"}

    running = by_name(client.sessions.list())
    assert set(running) == {"run"}, "default listing (all=false) must hide STOPPED sessions"
    running = by_name(client.sessions.list({"all": False}))
    assert set(running) == {"run"}


def test_list_empty(client):
    assert client.sessions.list({"all": True}) == []
    assert client.sessions.list() == []


# --------------------------------------------------------------------------- update


def test_update_replaces_whole_config(client):
    client.sessions.create({"name": "upd", "start": False, "config": FULL_CONFIG})
    new_config = {"proxy": {"server": "other:3128"}, "metadata": {"v": "2"}}
    updated = client.sessions.update("upd", {"config": new_config})
    sdk_validate(models.SessionDTO, updated)
    assert updated["name"] == "upd"
    assert updated["status"] == "STOPPED", "PUT must not start a stopped session"
    assert_config(new_config, updated["config"])

    got = client.sessions.get("upd")
    assert_config(new_config, got["config"])
    assert not strip_nulls(got["config"]).get("webhooks"), "PUT is a full replace: webhooks must be gone"

    # PUT without config clears it
    client.sessions.update("upd", {})
    assert strip_nulls(client.sessions.get("upd").get("config") or {}) in ({}, DTO_DEFAULTS)


def test_update_running_session_keeps_it_running(client):
    client.sessions.create({"name": "hot", "start": True})
    updated = client.sessions.update("hot", {"config": {"metadata": {"k": "v"}}})
    assert updated["name"] == "hot"
    assert updated["status"] != "STOPPED"
    got = client.sessions.get("hot")
    assert got["status"] != "STOPPED"
    assert strip_nulls(got["config"])["metadata"] == {"k": "v"}


def test_update_unknown_session_is_404(client):
    with http_error(404) as info:
        client.sessions.update("nope", {"config": {"metadata": {"a": "b"}}})
    assert info.value.response.json() == NOT_FOUND


# --------------------------------------------------------------------------- start / stop / restart / logout


def test_start_stop_transitions(client):
    client.sessions.create({"name": "cycle", "start": False, "config": {"metadata": {"x": "y"}}})
    assert client.sessions.get("cycle")["status"] == "STOPPED"

    started = client.sessions.start("cycle")
    sdk_validate(models.SessionDTO, started)
    assert started["name"] == "cycle"
    assert started["status"] != "STOPPED"
    assert client.sessions.get("cycle")["status"] != "STOPPED"
    assert "cycle" in by_name(client.sessions.list())

    stopped = client.sessions.stop("cycle")
    sdk_validate(models.SessionDTO, stopped)
    assert stopped["name"] == "cycle"
    assert stopped["status"] == "STOPPED"
    got = client.sessions.get("cycle")
    assert got["status"] == "STOPPED"
    assert strip_nulls(got["config"])["metadata"] == {"x": "y"}, "stop must keep the config"
    assert "cycle" not in by_name(client.sessions.list())
    assert by_name(client.sessions.list({"all": True}))["cycle"]["status"] == "STOPPED"

    # stop is idempotent
    assert client.sessions.stop("cycle")["status"] == "STOPPED"
    # and the session can be started again
    assert client.sessions.start("cycle")["status"] != "STOPPED"


def test_start_stop_restart_status_codes(server):
    assert server.post("/api/sessions", json={"name": "codes", "start": False}).status_code == 201
    for action in ("start", "stop", "restart", "logout"):
        r = server.post(f"/api/sessions/codes/{action}")
        assert r.status_code == 201, f"POST /api/sessions/codes/{action}: {r.status_code} {r.text!r}"
        body = r.json()
        assert body["name"] == "codes", body
        assert body["status"] in {s.value for s in models.Status}, body


def test_start_running_session_is_422(client):
    """WAHA's code path (seen in #2231) rejects a second start of a running session."""
    client.sessions.create({"name": "twice", "start": True})
    expected = {
        "message": "Session 'twice' is already started.",
        "error": "Unprocessable Entity",
        "statusCode": 422,
    }
    with http_error(422) as info:
        client.sessions.start("twice")
    assert info.value.response.json() == expected
    with http_error(422) as info:
        client.sessions.depracated_start({"name": "twice"})
    assert info.value.response.json() == expected
    # restart is the way to bounce a running session
    assert client.sessions.restart("twice")["status"] != "STOPPED"


def test_restart_starts_a_stopped_session(client):
    client.sessions.create({"name": "rs", "start": False})
    restarted = client.sessions.restart("rs")
    assert restarted["name"] == "rs"
    assert restarted["status"] != "STOPPED"
    assert client.sessions.get("rs")["status"] != "STOPPED"


def test_logout_keeps_config(client):
    client.sessions.create({"name": "lo", "start": False, "config": {"metadata": {"keep": "me"}}})
    result = client.sessions.logout("lo")
    assert result["name"] == "lo"
    got = client.sessions.get("lo")
    assert strip_nulls(got["config"])["metadata"] == {"keep": "me"}
    assert got.get("me") is None


@pytest.mark.parametrize("action", ["start", "restart", "logout"])
def test_actions_on_unknown_session_are_404(client, action):
    with http_error(404) as info:
        getattr(client.sessions, action)("nope")
    assert info.value.response.json() == NOT_FOUND


# --------------------------------------------------------------------------- delete


def test_delete_then_404_and_idempotent(client, server):
    client.sessions.create({"name": "gone", "start": False, "config": {"metadata": {"a": "b"}}})
    r = server.delete("/api/sessions/gone")
    assert r.status_code == 200, r.text
    assert r.content == b"", f"WAHA answers DELETE with an empty body, got {r.text!r}"

    with http_error(404) as info:
        client.sessions.get("gone")
    assert info.value.response.json() == NOT_FOUND
    assert "gone" not in by_name(client.sessions.list({"all": True}))

    # idempotent: deleting again, or something that never existed, is still 200
    client.sessions.delete("gone")
    r = server.delete("/api/sessions/never-was")
    assert r.status_code == 200, r.text

    # the name is free again
    assert client.sessions.create({"name": "gone", "start": False})["status"] == "STOPPED"
    assert_config({}, client.sessions.get("gone").get("config") or {})


def test_delete_running_session(client):
    client.sessions.create({"name": "busy", "start": True})
    client.sessions.delete("busy")
    with http_error(404):
        client.sessions.get("busy")
    assert client.sessions.list({"all": True}) == []


# --------------------------------------------------------------------------- deprecated endpoints


def test_deprecated_start_stop_logout(client, server):
    started = client.sessions.depracated_start({"name": "old", "config": {"metadata": {"d": "1"}}})
    assert started["name"] == "old"
    assert started["status"] != "STOPPED"
    got = client.sessions.get("old")
    assert got["status"] != "STOPPED"
    assert strip_nulls(got["config"])["metadata"] == {"d": "1"}

    r = server.post("/api/sessions/stop", json={"name": "old"})
    assert r.status_code == 201, r.text
    assert client.sessions.get("old")["status"] == "STOPPED"

    # logout (deprecated) = stop + logout + delete
    r = server.post("/api/sessions/logout", json={"name": "old"})
    assert r.status_code == 201, r.text
    with http_error(404):
        client.sessions.get("old")


def test_deprecated_stop_with_logout_deletes(client):
    client.sessions.create({"name": "old2", "start": True})
    client.sessions.deprecated_stop({"name": "old2", "logout": True})
    with http_error(404):
        client.sessions.get("old2")


# --------------------------------------------------------------------------- raw HTTP details


def test_numbers_keep_their_json_form(server):
    """JS prints 2 as `2`, never `2.0`: typed clients and byte-comparing tests notice."""
    server.post("/api/sessions", json={"name": "num", "start": False, "config": FULL_CONFIG})
    for r in (server.get("/api/sessions/num"), server.get("/api/sessions?all=true")):
        assert r.status_code == 200, r.text
        body = r.json()
        info = body[0] if isinstance(body, list) else body
        retries = info["config"]["webhooks"][0]["retries"]
        assert type(retries["attempts"]) is int and retries["attempts"] == 5, r.text
        assert type(retries["delaySeconds"]) is int and retries["delaySeconds"] == 2, r.text
        assert '"attempts":5' in r.text.replace(" ", ""), r.text
    status = server.get("/api/server/status").json()
    assert type(status["startTimestamp"]) is int and type(status["uptime"]) is int, status
    started = server.post("/api/sessions/num/start")
    assert started.status_code == 201, started.text
    activity = server.get("/api/sessions/num").json()["timestamps"].get("activity")
    assert activity is None or type(activity) is int, activity


def test_create_status_code_and_body(server):
    r = server.post("/api/sessions", json={"name": "raw", "start": False, "config": {"debug": True}})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["name"] == "raw" and body["status"] == "STOPPED"
    assert strip_nulls(body["config"]) == {"debug": True}
    r = server.get("/api/sessions/raw")
    assert r.status_code == 200


def test_invalid_session_name_is_400(server):
    r = server.post("/api/sessions", json={"name": "bad name!", "start": False})
    assert r.status_code == 400, f"{r.status_code} {r.text!r}"
    body = r.json()
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"
    assert isinstance(body["message"], list) and body["message"], body
    assert all(isinstance(m, str) for m in body["message"]), body
    assert any("alphanumeric" in m for m in body["message"]), body
    # nothing was created
    assert server.get("/api/sessions?all=true").json() == []


def test_session_name_length_limit(server, store):
    # WAHA: MaxLength(64 - len("waha_noweb")) = 54. On MongoDB wharf also keeps the
    # per-session database name `waha_{session_namespace}_{name}` under MongoDB's
    # 64-byte limit (63 - len("waha_gows_") = 53 with the default namespace).
    limit = 54
    if store == "mongo":
        limit = min(limit, 63 - len(f"waha_{server.env['WAHA_SESSION_NAMESPACE']}_"))
    r = server.post("/api/sessions", json={"name": "a" * limit, "start": False})
    assert r.status_code == 201, r.text
    r = server.post("/api/sessions", json={"name": "b" * (limit + 1), "start": False})
    assert r.status_code == 400, f"{r.status_code} {r.text!r}"
    assert r.json() == {
        "message": [f"name must be shorter than or equal to {limit} characters"],
        "error": "Bad Request",
        "statusCode": 400,
    }


def test_error_bodies_exact(server):
    r = server.get("/api/sessions/missing")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = server.put("/api/sessions/missing", json={"config": {}})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    server.post("/api/sessions", json={"name": "x", "start": False})
    r = server.post("/api/sessions", json={"name": "x"})
    assert r.status_code == 422
    assert r.json() == {
        "message": "Session 'x' already exists. Use PUT to update it.",
        "error": "Unprocessable Entity",
        "statusCode": 422,
    }


def test_malformed_bodies_are_400(server):
    r = server.post("/api/sessions", data="not json", headers={**server.headers(), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["statusCode"] == 400 and r.json()["error"] == "Bad Request", r.text
    r = server.post("/api/sessions", json={"name": 5, "start": False})
    assert r.status_code == 400, r.text
    assert r.json() == {"message": ["name must be a string"], "error": "Bad Request", "statusCode": 400}
    r = server.post("/api/sessions", json={"name": "w", "start": False, "config": {"webhooks": [{"events": []}]}})
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["message"], list), r.text
    assert server.get("/api/sessions?all=true").json() == []


def test_config_validation_is_400(server):
    cases = [
        ({"proxy": {}}, "config.proxy.server"),
        ({"metadata": {"a": 1}}, "config.metadata.a"),
        ({"debug": "yes"}, "config.debug"),
        ({"webhooks": [{"url": "http://x", "events": ["message"], "retries": {"policy": "weird"}}]}, "policy"),
    ]
    for config, field in cases:
        r = server.post("/api/sessions", json={"name": "v", "start": False, "config": config})
        assert r.status_code == 400, f"{config}: {r.status_code} {r.text!r}"
        body = r.json()
        assert body["statusCode"] == 400 and body["error"] == "Bad Request", body
        assert any(field in m for m in body["message"]), (config, body)
    assert server.get("/api/sessions?all=true").json() == []


def test_webhook_url_needs_a_scheme(server):
    r = server.post(
        "/api/sessions",
        json={
            "name": "v",
            "start": False,
            "config": {"webhooks": [{"url": "example.com/hook", "events": ["message"]}]},
        },
    )
    assert r.status_code == 400, f"{r.status_code} {r.text!r}"
    assert any("url" in m for m in r.json()["message"]), r.text


def test_validation_messages_use_nest_paths(server):
    """Nest's ValidationPipe joins nested paths with dots (`config.webhooks.0.url`), and
    class-validator's IsEnum lists the allowed values."""
    r = server.post(
        "/api/sessions",
        json={"start": False, "config": {"webhooks": [{"url": "http://x", "events": [], "retries": {"policy": "x"}}]}},
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == [
        "config.webhooks.0.retries.policy must be one of the following values: linear, exponential, constant"
    ]
    r = server.post("/api/sessions", json={"start": False, "config": {"webhooks": [{"events": ["message"]}]}})
    assert r.status_code == 400, r.text
    messages = r.json()["message"]
    assert messages and all(m.startswith("config.webhooks.0.url ") for m in messages), messages


def test_unknown_fields_are_dropped(server):
    """ValidationPipe{whitelist}: unknown members are stripped, not echoed, not a 400."""
    cfg = {"metadata": {"a": "b"}, "notAField": 1}
    r = server.post("/api/sessions", json={"name": "wl", "start": False, "config": cfg, "bogus": True})
    assert r.status_code == 201, r.text
    got = server.get("/api/sessions/wl").json()
    assert "notAField" not in (got.get("config") or {}), got
    assert "bogus" not in got, got


# --------------------------------------------------------------------------- persistence


def test_sessions_persist_across_restart(server):
    c = server.client()
    c.sessions.create({"name": "keep", "start": False, "config": FULL_CONFIG})
    c.sessions.create({"name": "keep2", "start": False})
    c.sessions.create({"name": "was-running", "start": True})
    c.sessions.create({"name": "deleted", "start": False})
    c.sessions.delete("deleted")
    c.close()

    server.restart()
    c = server.client()
    try:
        everything = by_name(c.sessions.list({"all": True}))
        assert set(everything) == {"keep", "keep2", "was-running"}
        assert_session_info(everything["keep"], "keep", "STOPPED")
        assert_session_info(everything["keep2"], "keep2", "STOPPED")
        assert_config(FULL_CONFIG, everything["keep"]["config"])
        assert_config(FULL_CONFIG, c.sessions.get("keep")["config"])
        # WAHA_WORKER_RESTART_SESSIONS (default true): what ran on this worker restarts at boot
        # (WAHA does it in the background right after boot: allow a few seconds)
        deadline = time.monotonic() + 5
        while c.sessions.get("was-running")["status"] == "STOPPED" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert c.sessions.get("was-running")["status"] != "STOPPED", "running session not restarted at boot"
        # a restored session is fully usable
        assert c.sessions.start("keep")["status"] != "STOPPED"
        assert c.sessions.stop("keep")["status"] == "STOPPED"
    finally:
        c.close()


def test_namespaces_isolate_stores(start_server, store):
    """WAHA_NAMESPACE selects the main store (`{base}/{ns}/` or Mongo `waha_{ns}`)."""
    first = start_server(WAHA_NAMESPACE="ns" + uuid.uuid4().hex[:10])
    c = first.client()
    c.sessions.create({"name": "mine", "start": False, "config": {"metadata": {"ns": "first"}}})
    c.close()
    first.stop()

    other = start_server(same_store_as=first, WAHA_NAMESPACE="other" + uuid.uuid4().hex[:8])
    c = other.client()
    assert c.sessions.list({"all": True}) == [], "another namespace must not see the sessions"
    with http_error(404):
        c.sessions.get("mine")
    c.sessions.create({"name": "theirs", "start": False})
    c.close()
    other.stop()

    again = start_server(same_store_as=first)
    c = again.client()
    try:
        assert [s["name"] for s in c.sessions.list({"all": True})] == ["mine"]
        assert strip_nulls(c.sessions.get("mine")["config"])["metadata"] == {"ns": "first"}
    finally:
        c.close()
    if store == "embedded":
        base = Path(first.env["WAHA_LOCAL_STORE_BASE_DIR"])
        assert (base / first.env["WAHA_NAMESPACE"] / "waha.sqlite3").is_file(), sorted(base.rglob("*"))


def test_expand_apps(client):
    client.sessions.create({"name": "ea", "start": False})
    plain = client.sessions.get("ea")
    assert "apps" not in plain or plain["apps"] is None, plain
    expanded = client.sessions.get("ea", {"expand": "apps"})
    assert expanded["apps"] == [], expanded
    listed = client.sessions.list({"all": True, "expand": "apps"})
    assert [s["apps"] for s in listed] == [[]], listed
    sdk_validate(models.SessionInfo, expanded)


# --------------------------------------------------------------------------- async SDK


def test_async_client(server):
    async def scenario():
        c = AsyncWahaClient(base_url=server.base_url, api_key=server.api_key)
        try:
            created = await c.sessions.a_create({"name": "asy", "start": False})
            listed = await c.sessions.a_list({"all": True})
            got = await c.sessions.a_get("asy")
            return created, listed, got
        finally:
            await c.close()

    created, listed, got = asyncio.run(scenario())
    assert created["status"] == "STOPPED"
    assert [s["name"] for s in listed] == ["asy"]
    assert_session_info(got, "asy", "STOPPED")
