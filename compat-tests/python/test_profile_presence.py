"""The `🆔 Profile`, `✅ Presence` and `📞 Calls` APIs through the real WAHA Python SDK
(waha-py), on both stores, with sessions logged in on the `mockwa` network (as
`test_groups.py`). Answers are validated with waha-py's pydantic models (`MyProfile`,
`Result`, `WAHAChatPresences`); what each change did is read back from the other session
or from mockwa's admin API (`/admin/profiles/{phone}`, `/admin/calls`).
"""

from __future__ import annotations

import base64

import pytest
import requests
from waha import models

from conftest import sdk_validate
from test_groups import A, B, cus, eventually, mockwa, pair  # noqa: F401 (mockwa is a fixture)


@pytest.fixture
def paired2(start_server, mockwa):  # noqa: F811
    """A wharf whose sessions `a` and `b` are WORKING on the mock network."""
    server = start_server(WHARF_WA_URL=f"ws://{mockwa}/ws/chat")
    for name, phone in (("a", A), ("b", B)):
        pair(server, mockwa, name, phone)
    client = server.client()
    yield server, client, mockwa
    client.close()


def admin(net: str, path: str) -> dict:
    r = requests.get(f"http://{net}/admin/{path}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_profile_through_the_sdk(paired2):
    server, client, net = paired2
    p = client.profile
    # No picture: `null`, as WAHA's 2026.7.1 spec says (`nullable`); waha-py 2026.9.2's
    # model types it as a plain string, so it is validated once there is a picture.
    me = p.get_my_profile("a")
    assert me == {"id": cus(A), "picture": None, "name": "a"}

    ok = p.set_profile_name("a", {"name": "Py Alice"})
    sdk_validate(models.Result, ok)
    assert ok == {"success": True}
    eventually("push name at mockwa", lambda: admin(net, f"profiles/{A}")["pushName"] == "Py Alice")
    assert p.get_my_profile("a")["name"] == "Py Alice"

    assert p.set_profile_status("a", {"status": "from python"}) == {"success": True}
    assert admin(net, f"profiles/{A}")["about"] == "from python"

    jpeg = b"\xff\xd8\xff\xe0python-profile"
    data = base64.b64encode(jpeg).decode()
    assert p.set_profile_picture("a", {"file": {"mimetype": "image/jpeg", "data": data}}) == {"success": True}
    me = p.get_my_profile("a")
    sdk_validate(models.MyProfile, me)
    assert me["picture"] == admin(net, f"profiles/{A}")["pictureUrl"]
    assert requests.get(me["picture"], timeout=10).content == jpeg
    assert p.delete_profile_picture("a") == {"success": True}
    assert p.get_my_profile("a")["picture"] is None

    # Not an image: WAHA's 400, nothing changed.
    r = server.put("/api/a/profile/picture", json={"file": {"mimetype": "text/plain", "data": data}})
    assert r.status_code == 400, r.text
    r = server.put("/api/a/profile/name", json={"name": ""})
    assert r.status_code == 400 and r.json()["message"] == ["name should not be empty"], r.text
    assert admin(net, f"profiles/{A}")["pictureId"] is None


def test_presence_and_calls_through_the_sdk(paired2):
    server, client, net = paired2
    pr = client.presence

    def showing(state: str):
        chats = pr.get_presence_all("a")
        return [c for c in chats if c["id"] == cus(B) and [p["lastKnownPresence"] for p in c["presences"]] == [state]]

    # One change at a time: WhatsApp does not order a <presence> against a <chatstate>.
    pr.subscribe("a", cus(B))
    pr.set_presence("b", {"presence": "online"})
    eventually("B online at A", lambda: showing("online"))
    pr.set_presence("b", {"chatId": cus(A), "presence": "typing"})
    got = eventually("B typing at A", lambda: showing("typing"))
    sdk_validate(models.WAHAChatPresences, got[0])
    one = pr.get_presence("a", cus(B))
    sdk_validate(models.WAHAChatPresences, one)
    assert one["presences"] == [{"participant": cus(B), "lastKnownPresence": "typing", "lastSeen": None}]

    r = server.post("/api/a/presence", json={"presence": "sleeping"})
    assert r.status_code == 400, r.text

    # B's phone calls A; A rejects it through the SDK; mockwa saw A's device decline.
    r = requests.post(f"http://{net}/admin/calls", json={"from": B, "to": A}, timeout=10)
    assert r.status_code == 200, r.text
    call = r.json()
    client.calls.reject_call("a", {"from": cus(B), "id": call["id"]})
    eventually("the reject at mockwa", lambda: admin(net, f"calls/{call['id']}")["state"] == "rejected")
    assert admin(net, f"calls/{call['id']}")["by"] == f"{A}:1@s.whatsapp.net"
    r = server.post("/api/a/calls/reject", json={"from": cus(B)})
    assert r.status_code == 400, r.text
