"""`🟢 Status` and the operations wharf does not run, through the WAHA Python SDK (waha-py),
on both stores.

Two sessions log in on the `mockwa` binary (see `test_groups.py`): `a` posts a text and an
image status for `b` through `client.status`, and `b` reads them back from its
`status@broadcast` chat; then the routes wharf answers as WAHA does without the feature
(screenshot, passkey, debug, apps, MCP) are checked with raw requests (exact bodies).
"""

from __future__ import annotations

import base64

import pytest
from waha import models

from conftest import sdk_validate
from test_groups import eventually, mockwa, pair  # noqa: F401 (mockwa is a fixture)

A, B = "15550008001", "15550008002"


@pytest.fixture
def two(start_server, mockwa):  # noqa: F811
    server = start_server(WHARF_WA_URL=f"ws://{mockwa}/ws/chat")
    for name, phone in (("a", A), ("b", B)):
        pair(server, mockwa, name, phone)
    client = server.client()
    yield server, client
    client.close()


def statuses_at_b(server) -> list[dict]:
    r = server.get("/api/b/chats/status@broadcast/messages", params={"limit": 10})
    return r.json() if r.status_code == 200 else []


def test_status_posts_through_the_sdk(two):
    server, client = two
    bob = f"{B}@c.us"
    new_id = client.status.get_new_message_id("a")
    sdk_validate(models.NewMessageIDResponse, new_id)

    sent = client.status.send_text_status(
        "a", {"id": new_id["id"], "contacts": [bob], "text": "py status", "backgroundColor": "#38b42f", "font": 0}
    )
    assert sent["id"] == f"true_status@broadcast_{new_id['id']}", sent
    got = eventually("b's text status", lambda: [m for m in statuses_at_b(server) if m["body"] == "py status"])
    assert got[0]["participant"] == f"{A}@c.us" and got[0]["fromMe"] is False

    image = base64.b64encode(b"\xff\xd8\xff\xe0py-status" * 50).decode()
    sent = client.status.send_image_status(
        "a", {"contacts": [bob], "caption": "py picture", "file": {"mimetype": "image/jpeg", "data": image}}
    )
    assert sent["hasMedia"] is True
    eventually("b's image status", lambda: [m for m in statuses_at_b(server) if m["body"] == "py picture"])
    client.status.delete_status("a", {"id": sent["id"], "contacts": [bob]})

    # No contacts: wharf keeps no address book (README, Differences).
    r = server.post("/api/a/status/text", json={"text": "x"})
    assert r.status_code == 400, r.text


def test_unsupported_operations_answer_as_waha(two):
    server, _ = two
    engine = {"message": "The method is not implemented by the engine.", "error": "Unprocessable Entity", "statusCode": 422}
    r = server.get("/api/screenshot", params={"session": "a"})
    assert (r.status_code, r.json()) == (422, engine)
    r = server.get("/api/a/auth/passkey/challenge")
    assert r.status_code == 422 and r.json()["expected"] == ["PASSKEY_REQUIRED"], r.text
    r = server.get("/api/server/debug/heapsnapshot")
    assert (r.status_code, r.json()["message"]) == (404, "WAHA_DEBUG_MODE is disabled")
    r = server.get("/api/apps", params={"session": "a"})
    assert (r.status_code, r.json()) == (200, [])
    r = server.post("/api/apps", json={"id": "x", "session": "a", "app": "calls", "config": {}})
    assert r.status_code == 422, r.text
    r = server.post("/mcp", json={})
    assert r.status_code == 422, r.text
