"""`📢 Channels` through the WAHA Python SDK (waha-py), on both stores: `a` creates a
channel, `b` follows, mutes, unmutes and unfollows it, `a` deletes it. Sessions log in on
the `mockwa` binary (see `test_groups.py`); answers are validated with waha-py's
`Channel` model.
"""

from __future__ import annotations

import pytest
from waha import models

from conftest import sdk_validate
from test_groups import mockwa, pair  # noqa: F401 (mockwa is a fixture)

A, B = "15550008101", "15550008102"


@pytest.fixture
def two(start_server, mockwa):  # noqa: F811
    server = start_server(WHARF_WA_URL=f"ws://{mockwa}/ws/chat")
    for name, phone in (("a", A), ("b", B)):
        pair(server, mockwa, name, phone)
    client = server.client()
    yield server, client
    client.close()


def test_channels_through_the_sdk(two):
    server, client = two
    ch = client.channels
    created = ch.create("a", {"name": "py channel", "description": "from python"})
    sdk_validate(models.Channel, created)
    cid = created["id"]
    assert cid.endswith("@newsletter") and created["role"] == "OWNER"

    ch.follow("b", cid)
    seen = ch.get("b", cid)
    sdk_validate(models.Channel, seen)
    assert seen["role"] == "SUBSCRIBER"
    listed = ch.list("b", params={"role": "SUBSCRIBER"})
    assert [c["id"] for c in listed] == [cid]
    for c in listed:
        sdk_validate(models.Channel, c)
    assert ch.get("a", cid)["subscribersCount"] == 1

    # The owner posts; the preview lists it (waha-py's ChannelMessage).
    r = server.post("/api/sendText", json={"session": "a", "chatId": cid, "text": "py post"})
    assert r.status_code == 201, r.text
    preview = ch.preview_channel_messages("b", cid, params={"limit": 5, "downloadMedia": False})
    assert [m["message"]["body"] for m in preview] == ["py post"], preview
    # (waha-py's WAMessage model requires strings for `participant`, `to`, `mediaUrl` and
    # `ackName`, which wharf leaves null for a channel post — no participant, no
    # download — so only the envelope and the message's addressing are checked.)
    for m in preview:
        assert set(m) == {"reactions", "message", "viewCount"}, m
        assert m["message"]["from"] == cid and m["message"]["fromMe"] is False
    ch.mute("b", cid)
    ch.unmute("b", cid)
    ch.unfollow("b", cid)
    assert ch.list("b") == []

    r = server.delete(f"/api/b/channels/{cid}")
    assert r.status_code == 403, r.text
    ch.delete("a", cid)
    r = server.get(f"/api/a/channels/{cid}")
    assert r.status_code == 404, r.text
