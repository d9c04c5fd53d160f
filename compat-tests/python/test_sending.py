"""The send operations of issue 9 through the real WAHA Python SDK (waha-py).

No session can pair here (there is no mock phone in these tests; the e2e tests in
tests/e2e/media_send.rs send for real through mockwa). What this checks is that what the
SDK puts on the wire - its pydantic models dumped with every unset field as `null`, or
plain dicts - is a body wharf parses: each call reaches the WORKING gate and gets WAHA's
422 status body for a stopped session, never a 400 about its own payload. And that bad
`file`s get their 400 before that gate's answer would matter.
"""

from __future__ import annotations

import httpx
import pytest
from waha import models as m

CHAT = "11111111111@c.us"
SESSION = "sdk_sender"


def gate_body(status: str) -> dict:
    return {
        "error": "Session status is not as expected. Try again later or restart the session",
        "session": SESSION,
        "status": status,
        "expected": ["WORKING"],
    }


def answer(call) -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as info:
        call()
    return info.value.response


@pytest.fixture
def stopped(server):
    r = server.post("/api/sessions", json={"name": SESSION, "start": False})
    assert r.status_code == 201, r.text
    return SESSION


def test_sdk_send_payloads_parse_and_reach_the_working_gate(client, stopped):
    c = client.chatting
    remote = m.RemoteFile(mimetype="image/jpeg", url="http://127.0.0.1:9/a.jpg")
    binary = m.BinaryFile(mimetype="application/pdf", filename="a.pdf", data="JVBERi0=")
    calls = {
        "sendImage": lambda: c.send_image(m.MessageImageRequest(chatId=CHAT, file=remote, session=stopped)),
        "sendFile": lambda: c.send_file(m.MessageFileRequest(chatId=CHAT, file=binary, caption="c", session=stopped)),
        # The SDK's voice/video file models want dicts for `mimetype` (a quirk of WAHA's
        # document), so these go as plain dicts, as SDK users send them.
        "sendVoice": lambda: c.send_voice(
            {"chatId": CHAT, "convert": True, "session": stopped,
             "file": {"mimetype": "audio/ogg; codecs=opus", "url": "http://127.0.0.1:9/v.ogg"}}
        ),
        "sendVideo": lambda: c.send_video(
            {"chatId": CHAT, "convert": False, "asNote": None, "session": stopped,
             "file": {"mimetype": "video/mp4", "filename": "v.mp4", "url": "http://127.0.0.1:9/v.mp4"}}
        ),
        "sendLocation": lambda: c.send_location(
            m.MessageLocationRequest(chatId=CHAT, latitude=38.8937255, longitude=-77.0969763, title="Office", session=stopped)
        ),
        "sendContactVcard": lambda: c.send_contact_vcard(
            m.MessageContactVcardRequest(
                chatId=CHAT,
                session=stopped,
                contacts=[m.Contact(fullName="John", phoneNumber="+1 555", vcard="BEGIN:VCARD\nEND:VCARD")],
            )
        ),
        "sendPoll": lambda: c.send_poll(
            m.MessagePollRequest(
                chatId=CHAT, session=stopped, poll=m.MessagePoll(name="Q", options=["a", "b"], multipleAnswers={})
            )
        ),
        "sendPollVote": lambda: c.send_poll_vote(
            m.MessagePollVoteRequest(
                chatId=CHAT, session=stopped, pollMessageId=f"false_{CHAT}_AAAA", votes=[["a"]]
            )
        ),
        "sendList": lambda: c.send_list(
            m.SendListRequest(
                chatId=CHAT,
                session=stopped,
                message=m.SendListMessage(
                    title="T", button="B", sections=[m.Section(title="S", rows=[m.Row(title="R", rowId="1")])]
                ),
            )
        ),
        "send/link-custom-preview": lambda: c.send_link_custom_preview(
            m.MessageLinkCustomPreviewRequest(
                chatId=CHAT,
                text="see https://example.test",
                session=stopped,
                preview=m.LinkPreviewData(url="https://example.test", title="T", description="D"),
            )
        ),
        "star": lambda: c.set_star(m.MessageStarRequest(messageId=f"true_{CHAT}_AAAA", chatId=CHAT, star=True, session=stopped)),
        "reply": lambda: c.reply(m.MessageReplyRequest(chatId=CHAT, text="hi", session=stopped)),
        "sendLinkPreview": lambda: c.send_link_preview_deprecated(
            m.MessageLinkPreviewRequest(chatId=CHAT, url="https://example.test", title="T", session=stopped)
        ),
        "events": lambda: client.events.send_event(
            stopped, m.EventMessageRequest(chatId=CHAT, event=m.EventMessage(name="E", startTime=2063137000))
        ),
    }
    for name, call in calls.items():
        r = answer(call)
        assert (r.status_code, r.json()) == (422, gate_body("STOPPED")), f"{name}: {r.text}"


def test_sdk_bad_file_is_400_before_the_gate(client, stopped):
    r = answer(lambda: client.chatting.send_image({"chatId": CHAT, "session": stopped, "file": {"url": "http://127.0.0.1:9/x"}}))
    assert r.status_code == 400, r.text
    assert r.json() == {"message": ["file.mimetype should not be empty"], "error": "Bad Request", "statusCode": 400}
