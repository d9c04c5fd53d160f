"""The `👤 Contacts` and LID routes through the real WAHA Python SDK (waha-py), on both
stores, with two sessions logged in on the `mockwa` binary (see test_groups.py).

B writes to A, so A learns B's push name and LID; A saves a name for B, reads B's about
text and profile picture (set through mockwa's admin API), blocks and unblocks B (mockwa's
block list follows). Answers are validated with waha-py's models where it has one
(`LidToPhoneNumber`, `CountResponse`, `ContactRequest`, `ContactUpdateBody`, `Result`).
"""

from __future__ import annotations

import base64

import pytest
import requests
from waha import models

from conftest import sdk_validate
from test_groups import A, B, cus, eventually, mockwa, pair  # noqa: F401 (mockwa: fixture)


@pytest.fixture
def two(start_server, mockwa):  # noqa: F811
    """A wharf whose sessions `a` and `b` are WORKING on the mock network."""
    server = start_server(WHARF_WA_URL=f"ws://{mockwa}/ws/chat")
    for name, phone in (("a", A), ("b", B)):
        pair(server, mockwa, name, phone)
    client = server.client()
    yield server, client, mockwa
    client.close()


def test_contacts_and_lids_through_the_sdk(two):
    server, client, net = two
    contacts, lids = client.contacts, client.lids

    sdk_validate(models.ContactRequest, {"contactId": B, "session": "a"})
    sdk_validate(models.ContactUpdateBody, {"firstName": "Bob", "lastName": "Builder"})

    r = server.post("/api/sendText", json={"session": "b", "chatId": cus(A), "text": "hi"})
    assert r.status_code == 201, r.text
    listed = eventually(
        "B in a's contacts",
        lambda: [c for c in contacts.get_all(params={"session": "a"}) if c["id"] == cus(B)],
    )
    assert listed[0]["pushname"] == "b" and listed[0]["isWAContact"] is True

    # LIDs both ways.
    pair_b = eventually(
        "B's LID", lambda: [p for p in lids.get_all("a", params={"limit": 100}) if p["pn"] == cus(B)]
    )[0]
    sdk_validate(models.LidToPhoneNumber, pair_b)
    lid = pair_b["lid"]
    assert lid.endswith("@lid")
    assert lids.find_pn_by_lid("a", lid) == {"lid": lid, "pn": cus(B)}
    assert lids.find_lid_by_phone_number("a", B) == {"lid": lid, "pn": cus(B)}
    count = lids.get_lids_count("a")
    sdk_validate(models.CountResponse, count)
    assert count["count"] >= 1

    # A saved name.
    ans = client.contacts_session.put("a", cus(B), {"firstName": "Bob", "lastName": "Builder"})
    sdk_validate(models.Result, ans)
    assert ans == {"success": True}
    got = contacts.get(params={"contactId": B, "session": "a"})
    assert (got["name"], got["pushname"], got["isMyContact"]) == ("Bob Builder", "b", True)
    assert client.contacts_session.get("a", cus(B))["id"] == cus(B)

    # About and picture, as the mock phone has them.
    jpeg = b"\xff\xd8\xff\xe0python"
    r = requests.post(
        f"http://{net}/admin/phones/{B}/profile",
        json={"about": "From python", "picture": base64.b64encode(jpeg).decode()},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert contacts.get_about(params={"contactId": B, "session": "a"}) == {"about": "From python"}
    url = contacts.get_profile_picture(params={"contactId": B, "session": "a", "refresh": "true"})[
        "profilePictureURL"
    ]
    assert requests.get(url, timeout=10).content == jpeg

    # Block / unblock reach the mock's block list.
    contacts.block({"contactId": cus(B), "session": "a"})
    assert requests.get(f"http://{net}/admin/phones/{A}/blocklist", timeout=10).json() == {"blocked": [B]}
    assert contacts.get(params={"contactId": B, "session": "a"})["isBlocked"] is True
    contacts.unblock({"contactId": cus(B), "session": "a"})
    assert requests.get(f"http://{net}/admin/phones/{A}/blocklist", timeout=10).json() == {"blocked": []}

    # Bad input and an unknown contact, raw.
    r = server.get("/api/contacts", params={"contactId": "nope", "session": "a"})
    assert r.status_code == 400 and r.json()["statusCode"] == 400, r.text
    r = server.get("/api/a/contacts/15559990000")
    assert r.status_code == 404, r.text
    assert r.json() == {"message": "Contact not found", "error": "Not Found", "statusCode": 404}
