"""Labels and chat management (app state) through the real WAHA Python SDK (waha-py), on
both stores.

Sessions log in on the `mockwa` binary (see `test_groups.py`); mockwa's phone keeps the
account's app state, so the test checks what reached the phone through its admin API
(`GET /admin/phones/{phone}/app-state`) and makes the phone change things
(`POST /admin/phones/{phone}/app-state`). Answers are validated with waha-py's models.
"""

from __future__ import annotations

import pytest
import requests
from waha import models

from conftest import sdk_validate
from test_groups import cus, eventually, mockwa, pair  # noqa: F401  (mockwa is a fixture)

A, B, C = "15550005101", "15550005102", "15550005103"


def phone_state(net: str) -> dict:
    r = requests.get(f"http://{net}/admin/phones/{A}/app-state", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def phone_does(net: str, action: dict) -> None:
    r = requests.post(f"http://{net}/admin/phones/{A}/app-state", json=action, timeout=10)
    assert r.status_code == 200, r.text


@pytest.fixture
def one(start_server, mockwa):  # noqa: F811
    server = start_server(WHARF_WA_URL=f"ws://{mockwa}/ws/chat")
    pair(server, mockwa, "a", A)
    client = server.client()
    yield server, client, mockwa
    client.close()


def test_labels_through_the_sdk(one):
    server, client, net = one
    lb = client.labels

    created = lb.create("a", {"name": "VIP", "colorHex": "#64c4ff"})
    sdk_validate(models.Label, created)
    assert created == {"id": "1", "name": "VIP", "color": 1, "colorHex": "#64c4ff"}
    eventually("label on the phone", lambda: [l["name"] for l in phone_state(net)["labels"]] == ["VIP"])

    phone_does(net, {"action": "labelEdit", "labelId": "7", "name": "Lead", "color": 3})
    eventually("phone's label in wharf", lambda: [l["id"] for l in lb.get_all("a")] == ["1", "7"])
    for label in lb.get_all("a"):
        sdk_validate(models.Label, label)

    lb.put_chat_labels("a", cus(B), {"labels": [{"id": "1"}]})
    eventually(
        "chat label on the phone",
        lambda: phone_state(net)["labelChats"] == [{"labelId": "1", "chatId": f"{B}@s.whatsapp.net"}],
    )
    assert [l["id"] for l in lb.get_chat_labels("a", cus(B))] == ["1"]
    assert lb.get_chats_by_label("a", "1") == [{"id": cus(B)}]

    phone_does(net, {"action": "labelChat", "labelId": "7", "chatId": f"{C}@s.whatsapp.net", "labeled": True})
    eventually("phone's chat label in wharf", lambda: lb.get_chats_by_label("a", "7") == [{"id": cus(C)}])

    updated = lb.update("a", "1", {"name": "VIP2", "color": 2})
    sdk_validate(models.Label, updated)
    assert updated["colorHex"] == "#ffd429"
    assert lb.delete("a", "1") == {"result": True}
    eventually("deleted", lambda: [l["id"] for l in lb.get_all("a")] == ["7"])

    # WAHA's errors, raw.
    r = server.post("/api/a/labels", json={"name": "x"})
    assert (r.status_code, r.json()["message"]) == (422, "'color' or 'colorHex' is required")
    r = server.put("/api/a/labels/99", json={"name": "y", "color": 1})
    assert (r.status_code, r.json()["message"]) == (404, "Label not found")


def test_chat_management_through_the_sdk(one):
    server, client, net = one
    ch = client.chats
    jid = f"{B}@s.whatsapp.net"

    ch.archive_chat("a", cus(B))
    eventually("archived on the phone", lambda: phone_state(net)["archived"] == [jid])
    ch.unarchive_chat("a", cus(B))
    eventually("unarchived on the phone", lambda: phone_state(net)["archived"] == [])
    ch.unread_chat("a", cus(B))
    eventually("unread on the phone", lambda: phone_state(net)["unread"] == [jid])

    # (waha-py's ChatPictureResponse dropped the spec's `nullable`, as in test_groups.py.)
    assert ch.get_chat_picture("a", cus(B), params={"refresh": "true"}) == {"url": None}

    ch.clear_messages("a", cus(B))
    eventually("clearChat on the phone", lambda: ["clearChat", jid, "0", "0"] in phone_state(net)["indexes"])
    ch.delete_chat("a", cus(B))
    eventually("deleteChat on the phone", lambda: ["deleteChat", jid, "0"] in phone_state(net)["indexes"])

    r = server.post("/api/a/chats/not-a-chat/archive")
    assert r.status_code == 400, r.text
