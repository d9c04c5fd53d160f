"""Scoped API keys through the real WAHA Python SDK (waha-py): an admin creates a key
for one session, and that key can neither see nor act on another session (issue 13)."""

from __future__ import annotations

import httpx
import pytest
from waha import models

from conftest import sdk_validate

FORBIDDEN = {"message": "Forbidden", "statusCode": 403}


def status_of(call) -> int:
    """The HTTP status a waha-py call ended with (200 when it returned)."""
    try:
        call()
    except httpx.HTTPStatusError as e:
        return e.response.status_code
    return 200


def test_session_key_sees_and_acts_only_on_its_own_session(server, client):
    for name in ("alice", "bob"):
        client.sessions.create({"name": name, "start": False})
    created = client.api_keys.create({"isAdmin": False, "session": "alice", "isActive": True})
    sdk_validate(models.ApiKeyDTO, created)
    assert created["session"] == "alice"
    assert created["actions"] == {
        "read": True, "send": True, "control": True, "setting": True, "app": True, "delete": False,
    }
    key = created["key"]
    # Listed, but never again in clear.
    listed = client.api_keys.list()
    assert [k["id"] for k in listed] == [created["id"]]
    assert key not in str(listed)

    alice = server.client(api_key=key)
    try:
        # Sees only its own session.
        assert [s["name"] for s in alice.sessions.list(params={"all": True})] == ["alice"]
        assert alice.sessions.get("alice")["name"] == "alice"
        # Cannot see or act on bob.
        for call in (
            lambda: alice.sessions.get("bob"),
            lambda: alice.sessions.start("bob"),
            lambda: alice.sessions.stop("bob"),
            lambda: alice.sessions.delete("bob"),
            lambda: alice.sessions.update("bob", {"config": {"debug": True}}),
            lambda: alice.chatting.send_text({"session": "bob", "chatId": "1@c.us", "text": "hi"}),
        ):
            assert status_of(call) == 403
        # Nor on the server: admin routes.
        for call in (
            lambda: alice.api_keys.list(),
            lambda: alice.sessions.create({"name": "mallory", "start": False}),
            lambda: alice.server.environment(),
        ):
            assert status_of(call) == 403
        # Deleting its own session needs `delete`, off by default.
        assert status_of(lambda: alice.sessions.delete("alice")) == 403
        r = server.get("/api/sessions/bob", headers={"X-Api-Key": key})
        assert (r.status_code, r.json()) == (403, FORBIDDEN)
    finally:
        alice.close()

    # Revoked: refused at once.
    client.api_keys.delete(created["id"])
    assert server.get("/api/sessions/alice", headers={"X-Api-Key": key}).status_code == 401


def test_media_and_control_keys_are_idempotent_and_scoped(server, client):
    for name in ("alice", "bob"):
        client.sessions.create({"name": name, "start": False})
    media = client.api_keys.media({"session": "alice"})
    sdk_validate(models.ApiKeyDTO, media)
    assert client.api_keys.media({"session": "alice"})["key"] == media["key"]
    control = client.api_keys.control({"session": "alice"})
    assert control["actions"]["control"] is True
    hdr = {"X-Api-Key": control["key"]}
    assert server.post("/api/sessions/alice/stop", headers=hdr).status_code == 201
    assert server.post("/api/sessions/bob/stop", headers=hdr).status_code == 403
    assert server.get("/api/sessions/alice", headers={"X-Api-Key": media["key"]}).status_code == 403
    with pytest.raises(httpx.HTTPStatusError) as info:
        client.api_keys.media({"session": "nobody"})
    assert info.value.response.status_code == 422
