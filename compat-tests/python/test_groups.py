"""The `👥 Groups` API through the real WAHA Python SDK (waha-py), on both stores.

Unlike the other files here, these sessions really log in: the test starts the `mockwa`
binary (the offline mock WhatsApp network, `MOCKWA_BIN`, default `target/debug/mockwa`),
points wharf's engine at it, and scans each session's QR through mockwa's admin API. Every
answer the SDK returns is validated with waha-py's own pydantic models where it has one
(`GroupInfo`, `GroupParticipant`, `GroupJoinRequest`, `SettingsMemberAddMode`, …).
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from waha import models

from conftest import sdk_validate

REPO = Path(__file__).resolve().parents[2]
A, B, C = "15550001111", "15550002222", "15550003333"


def cus(phone: str) -> str:
    return f"{phone}@c.us"


@pytest.fixture
def mockwa() -> Iterator[str]:
    """A running mock WhatsApp network; yields `HOST:PORT`."""
    binary = os.environ.get("MOCKWA_BIN", str(REPO / "target" / "debug" / "mockwa"))
    if not Path(binary).is_file():
        pytest.fail(f"no mockwa binary at {binary}: cargo build --workspace --features wharf/mock-network --bins")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("mockwa listening on "), line
        yield line.rsplit(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def eventually(what: str, probe, timeout: float = 40.0):
    """Polls `probe` (a value or None) until it answers, or fails with `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; last: {last!r}", pytrace=False)


def pair(server, net: str, name: str, phone: str) -> None:
    r = server.post("/api/sessions", json={"name": name})
    assert r.status_code == 201, r.text

    def qr():
        r = server.get(f"/api/{name}/auth/qr", params={"format": "raw"})
        return r.json().get("value") if r.status_code == 200 else None

    code = eventually(f"{name}'s QR", qr)
    r = requests.post(f"http://{net}/admin/scan-qr", json={"qr": code, "phone": phone, "pushName": name}, timeout=30)
    assert r.status_code == 200, r.text
    eventually(f"{name} WORKING", lambda: server.get(f"/api/sessions/{name}").json().get("status") == "WORKING")


@pytest.fixture
def paired(start_server, mockwa):
    """A wharf whose sessions `a`, `b`, `c` are WORKING on the mock network."""
    server = start_server(WHARF_WA_URL=f"ws://{mockwa}/ws/chat")
    for name, phone in (("a", A), ("b", B), ("c", C)):
        pair(server, mockwa, name, phone)
    client = server.client()
    yield server, client, mockwa
    client.close()


def roles(participants) -> list[tuple[str, str]]:
    return sorted((p["id"], p["role"]) for p in participants)


def test_groups_through_the_sdk(paired):
    server, client, net = paired
    g = client.groups

    # Create, read back (cache), count, list.
    created = g.create_group("a", {"name": "py team", "participants": [{"id": cus(B)}]})
    sdk_validate(models.GroupInfo, created)
    gid = created["id"]
    assert gid.endswith("@g.us") and created["subject"] == "py team"
    info = g.get_group("a", gid)
    sdk_validate(models.GroupInfo, info)
    assert roles(info["participants"]) == [(cus(A), "superadmin"), (cus(B), "participant")]
    assert g.get_groups_count("a") == {"count": 1}
    listed = g.get_groups("a", params={"sortBy": "subject", "sortOrder": "asc", "limit": 10})
    assert [x["id"] for x in listed] == [gid]
    for item in listed:
        sdk_validate(models.GroupInfo, item)
    # B learns about it from the notification (its own cache).
    eventually("B's cache", lambda: g.get_groups_count("b") == {"count": 1})

    # Participants: add C, promote B, demote B, remove C.
    added = g.add_participants("a", gid, {"participants": [{"id": cus(C)}]})
    assert added == [{"id": cus(C), "error": None}]
    g.promote_to_admin("a", gid, {"participants": [{"id": cus(B)}]})
    members = g.get_group_participants("a", gid)
    for p in members:
        sdk_validate(models.GroupParticipant, p)
    assert roles(members) == [(cus(A), "superadmin"), (cus(B), "admin"), (cus(C), "participant")]
    g.demote_to_admin("a", gid, {"participants": [{"id": cus(B)}]})
    assert roles(g.get_participants("a", gid))[1] == (cus(B), "participant")
    g.remove_participants("a", gid, {"participants": [{"id": cus(C)}]})
    assert roles(g.get_group_participants("a", gid)) == [(cus(A), "superadmin"), (cus(B), "participant")]

    # Subject and description.
    g.set_subject("a", gid, {"subject": "py renamed"})
    g.set_description("a", gid, {"description": "from python"})
    info = g.get_group("a", gid)
    assert (info["subject"], info["description"]) == ("py renamed", "from python")

    # Settings: WAHA's two older routes and the three newer ones, with waha-py's models.
    g.set_messages_admin_only("a", gid, {"adminsOnly": True})
    ans = g.get_messages_admin_only("a", gid)
    sdk_validate(models.SettingsSecurityChangeInfo, ans)
    assert ans == {"adminsOnly": True}
    g.set_info_admin_only("a", gid, {"adminsOnly": True})
    assert g.get_info_admin_only("a", gid) == {"adminsOnly": True}
    g.set_member_add_mode("a", gid, {"membersCanAddNewMember": False})
    ans = g.get_member_add_mode("a", gid)
    sdk_validate(models.SettingsMemberAddMode, ans)
    assert ans == {"membersCanAddNewMember": False}
    g.set_member_share_history_mode("a", gid, {"membersCanShareHistory": False})
    ans = g.get_member_share_history_mode("a", gid)
    sdk_validate(models.SettingsMemberShareHistoryMode, ans)
    assert ans == {"membersCanShareHistory": False}
    assert g.get_membership_approval_mode("a", gid) == {"newMembersApprovalRequired": False}

    # Invite codes: read, revoke, join-info, join.
    link = g.get_invite_code("a", gid)
    assert isinstance(link, str) and link.startswith("https://chat.whatsapp.com/"), link
    new = g.revoke_invite_code("a", gid)
    assert isinstance(new, str) and new.startswith("https://chat.whatsapp.com/") and new != link
    peek = g.join_info_group("c", params={"code": new})
    assert peek["id"] == gid and peek["subject"] == "py renamed"
    joined = g.join_group("c", {"code": new})
    sdk_validate(models.JoinGroupResponse, joined)
    assert joined == {"id": gid}
    eventually("C's cache", lambda: g.get_groups_count("c") == {"count": 1})
    g.leave_group("c", gid)
    assert g.get_groups_count("c") == {"count": 0}

    # Join requests: approval on, C asks again, A lists and approves.
    g.set_membership_approval_mode("a", gid, {"newMembersApprovalRequired": True})
    assert g.get_membership_approval_mode("a", gid) == {"newMembersApprovalRequired": True}
    assert g.join_group("c", {"code": new}) == {"id": gid}
    requests_ = g.get_group_join_requests("a", gid)
    for r in requests_:
        sdk_validate(models.GroupJoinRequest, r)
    assert [r["requesterId"] for r in requests_] == [cus(C)]
    results = g.approve_group_join_requests("a", gid, {"participants": [{"id": cus(C)}]})
    for r in results:
        sdk_validate(models.GroupJoinRequestResult, r)
    assert results == [{"requesterId": cus(C), "success": True, "error": None}]
    rejected = g.reject_group_join_requests("a", gid, {"participants": [{"id": "15559999999@c.us"}]})
    assert rejected == [{"requesterId": "15559999999@c.us", "success": False, "error": 404}]

    # Picture: set (BinaryFile), get (ChatPictureResponse), delete.
    jpeg = b"\xff\xd8\xff\xe0python-picture"
    # (waha-py's generated signature is `set_picture(id, session, payload)`.)
    ok = g.set_picture(gid, "a", {"file": {"mimetype": "image/jpeg", "data": base64.b64encode(jpeg).decode()}})
    assert ok == {"success": True}
    pic = g.get_chat_picture("a", gid)
    sdk_validate(models.ChatPictureResponse, pic)
    assert requests.get(pic["url"], timeout=10).content == jpeg
    assert g.delete_picture(gid, "a") == {"success": True}
    assert g.get_chat_picture("a", gid) == {"url": None}

    # Refresh, then delete the group (A removes everyone and leaves).
    assert g.refresh_groups("b") == {"success": True}
    assert g.get_groups_count("b") == {"count": 1}
    g.delete_group("a", gid)
    assert g.get_groups_count("a") == {"count": 0}
    eventually("B's cache forgets it", lambda: g.get_groups_count("b") == {"count": 0})


def test_group_errors_are_waha_4xx(paired):
    server, client, _ = paired
    # Unknown group: 404; a chat id that is no group: 400 with class-validator's message
    # array; empty participants: 400; not an admin: 403. Never a 500.
    r = server.get("/api/a/groups/120363999999999999@g.us")
    assert r.status_code == 404 and r.json()["error"] == "Not Found", r.text
    r = server.get("/api/a/groups/123@c.us")
    assert r.status_code == 400 and isinstance(r.json()["message"], list), r.text
    created = client.groups.create_group("a", {"name": "errs", "participants": [{"id": cus(B)}]})
    gid = created["id"]
    r = server.post(f"/api/a/groups/{gid}/participants/add", json={"participants": []})
    assert r.status_code == 400 and r.json()["message"] == ["participants should not be empty"], r.text
    r = server.put(f"/api/b/groups/{gid}/settings/security/messages-admin-only", json={"adminsOnly": True})
    assert r.status_code == 403 and r.json()["statusCode"] == 403, r.text
