"""`📢 Channels` through the WAHA Python SDK (waha-py), on both stores: `a` creates a
channel, `b` follows, mutes, unmutes and unfollows it, `a` deletes it. Sessions log in on
the `mockwa` binary (see `test_groups.py`); answers are validated with waha-py's
`Channel` model.
"""

from __future__ import annotations

import base64

import pytest
from waha import models

from conftest import sdk_validate
from test_groups import eventually, mockwa, pair  # noqa: F401 (mockwa is a fixture)

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


def test_channel_search_through_the_sdk(two, mockwa):  # noqa: F811
    """The directory routes through waha-py: a channel listed in mockwa's directory is found
    by text and by view; the fixed lists validate against waha-py's models."""
    import requests

    _server, client = two
    ch = client.channels
    cid = ch.create("a", {"name": "Py regatta", "description": "Rowing news"})["id"]
    r = requests.post(
        f"http://{mockwa}/admin/newsletters/{cid}/directory",
        json={"country": "US", "categories": ["SPORTS"], "featured": False},
        timeout=10,
    )
    assert r.status_code == 200, r.text

    found = ch.search_by_text("b", {"text": "REGATTA"})
    sdk_validate(models.ChannelListResult, found)
    assert [c["id"] for c in found["channels"]] == [cid], found
    assert found["channels"][0]["name"] == "Py regatta"

    by_view = ch.search_by_view(
        "b", {"view": "RECOMMENDED", "countries": ["US"], "categories": ["SPORTS"], "limit": 10}
    )
    sdk_validate(models.ChannelListResult, by_view)
    assert cid in [c["id"] for c in by_view["channels"]], by_view
    # Another country: not listed there.
    elsewhere = ch.search_by_view("b", {"view": "RECOMMENDED", "countries": ["BR"], "categories": []})
    assert cid not in [c["id"] for c in elsewhere["channels"]], elsewhere

    views = ch.get_search_views("b")
    assert any(v["value"] == "RECOMMENDED" for v in views), views
    for v in views:
        sdk_validate(models.ChannelView, v)
    countries = ch.get_search_countries("b")
    assert any(c["code"] == "US" for c in countries)
    for c in countries:
        sdk_validate(models.ChannelCountry, c)
    categories = ch.get_search_categories("b")
    assert categories, "categories listed"
    for c in categories:
        sdk_validate(models.ChannelCategory, c)


def test_channel_media_post_through_the_sdk(two):
    """waha-py's `send_image` to a `…@newsletter` chat: the follower gets the post with its
    media, which downloads byte-identical from `/api/files` (channel media travels
    unencrypted; mockwa refuses an encrypted post)."""
    server, client = two
    cid = client.channels.create("a", {"name": "py pictures"})["id"]
    client.channels.follow("b", cid)
    image = b"\xff\xd8\xff\xe0py-channel" * 64
    sent = client.chatting.send_image(
        {
            "session": "a",
            "chatId": cid,
            "caption": "py channel picture",
            "file": {"mimetype": "image/jpeg", "data": base64.b64encode(image).decode()},
        }
    )
    assert sent["hasMedia"] is True and sent["to"] == cid, sent

    def at_b():
        r = server.get(f"/api/b/chats/{cid}/messages", params={"limit": 10, "downloadMedia": "true"})
        assert r.status_code == 200, r.text
        return [m for m in r.json() if m.get("body") == "py channel picture" and (m.get("media") or {}).get("url")]

    got = eventually("b's channel picture", at_b)[0]
    assert got["hasMedia"] is True and got["from"] == cid, got
    url = got["media"]["url"]
    r = server.get(url[url.index("/api/files/") :])
    assert r.status_code == 200 and r.content == image

    # A follower cannot post to it (WhatsApp's 403).
    r = server.post(
        "/api/sendImage",
        json={"session": "b", "chatId": cid, "file": {"mimetype": "image/jpeg", "data": base64.b64encode(image).decode()}},
    )
    assert r.status_code == 403, r.text
