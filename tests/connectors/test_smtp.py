"""The SMTP connector against a real SMTP server (aiosmtpd) on 127.0.0.1: logins, TLS, email, iMIP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest

from chronary import outbound
from chronary.config import Settings
from chronary.connectors import client, load
from chronary.connectors.base import BadCredentials, BadInput, ConnectorError, Unreachable
from chronary.connectors.smtp import Connector
from tests.conftest import free_port
from tests.fakes.smtp import PASSWORD, USERNAME, FakeSMTP
from tests.fakes.tls import make_tls

EVENT = {
    "title": "Design review",
    "start_time": "2025-03-10T09:00:00+01:00",
    "end_time": "2025-03-10T10:00:00+01:00",
    "timezone": "Europe/Berlin",
    "description": "Walk through the new calendar sync.",
    "location": "Room 4.01",
}


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    with FakeSMTP() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def trust_test_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    # the verifying context every outbound client uses, pinned to the CA FakeSMTP's certificates come from
    monkeypatch.setattr(outbound, "_ssl_context", make_tls().client_context())


def run(settings: Settings, credentials: dict[str, str], action: str | None, inputs: dict[str, Any] | None = None) -> Any:
    """check() when action is None, else run(action, inputs)."""

    async def go() -> Any:
        http = client(settings)
        try:
            connector = Connector(credentials, settings, http)
            return await (connector.check() if action is None else connector.run(action, inputs or {}))
        finally:
            await http.aclose()

    return asyncio.run(go())


def parts(message: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


def calendar_of(message: EmailMessage) -> tuple[icalendar.Calendar, icalendar.Calendar, EmailMessage]:
    """The text/calendar part and the invite.ics attachment, both parsed, and the calendar part."""
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    [attachment] = list(message.iter_attachments())
    assert isinstance(part, EmailMessage) and isinstance(attachment, EmailMessage)
    inline = icalendar.Calendar.from_ical(part.get_content())
    attached = icalendar.Calendar.from_ical(attachment.get_content())
    return inline, attached, part


def test_the_registry_loads_this_connector() -> None:
    assert load("smtp") is Connector


# -- check -------------------------------------------------------------------------------------


def test_check_logs_in_and_answers_the_username(settings: Settings, smtp: FakeSMTP) -> None:
    assert run(settings, smtp.credentials(), None) == USERNAME
    [login] = smtp.logins
    assert (login.username, login.ok) == (USERNAME, True)  # the non-ASCII password went through as UTF-8
    assert smtp.received == []


def test_check_with_a_wrong_password_is_bad_credentials(settings: Settings, smtp: FakeSMTP) -> None:
    with pytest.raises(BadCredentials) as err:
        run(settings, smtp.credentials(password="wrong-password-42"), None)
    assert err.value.field == "password"
    assert "535" in err.value.reason
    assert "wrong-password-42" not in err.value.reason
    # smtplib tries each mechanism the server offers; none got in
    assert [(login.mechanism, login.ok) for login in smtp.logins] == [("PLAIN", False), ("LOGIN", False)]


def test_no_reason_contains_the_password_even_when_the_server_echoes_it(settings: Settings) -> None:
    with FakeSMTP(echo_credentials=True) as smtp, pytest.raises(BadCredentials) as err:
        run(settings, smtp.credentials(password="s3cret-Echo!"), None)
    assert "Bad login" in err.value.reason and "<password>" in err.value.reason
    assert "s3cret-Echo!" not in err.value.reason and "s3cret-Echo!" not in str(err.value)


def test_no_username_means_no_login_until_the_server_asks(settings: Settings, smtp: FakeSMTP) -> None:
    creds = smtp.credentials(username="", password="")
    assert run(settings, creds, None) == USERNAME  # the from address: nothing to log in with
    assert smtp.logins == []
    with pytest.raises(BadCredentials) as err:
        run(settings, creds, "send_email", {"to": ["ada@example.com"], "subject": "x", "text": "y"})
    assert err.value.field == "username" and "530" in err.value.reason
    assert smtp.received == []


def test_a_closed_port_is_unreachable(settings: Settings, smtp: FakeSMTP) -> None:
    port = free_port()
    with pytest.raises(Unreachable) as err:
        run(settings, smtp.credentials(port=str(port)), None)
    assert f"127.0.0.1:{port}" in err.value.reason and "refused" in err.value.reason
    assert PASSWORD not in err.value.reason


def test_the_outbound_guard_is_asked_before_connecting(tmp_path: Path, smtp: FakeSMTP) -> None:
    private_off = Settings(data_dir=tmp_path, allow_private_network_targets=False)
    with pytest.raises(ConnectorError) as err:
        run(private_off, smtp.credentials(), None)
    assert err.value.field == "host" and "allow_private_network_targets" in err.value.reason
    this_server = Settings(data_dir=tmp_path, port=smtp.port)
    with pytest.raises(ConnectorError) as err:
        run(this_server, smtp.credentials(), None)
    assert err.value.reason == outbound.OWN_SERVER
    assert smtp.logins == [] and smtp.received == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"port": "smtp"}, "port"),
        ({"port": "70000"}, "port"),
        ({"security": "tls"}, "security"),
        ({"host": "mail server"}, "host"),
        ({"host": "http://mail.example"}, "host"),
        ({"host": "mail.example:25"}, "host"),
        ({"host": "mail.example/x"}, "host"),
        ({"from_address": "not an address"}, "from_address"),
        ({"from_address": "a@example.com\r\nBcc: x@example.com"}, "from_address"),
    ],
)
def test_malformed_credentials_name_their_field(
    settings: Settings, smtp: FakeSMTP, overrides: dict[str, str], field: str
) -> None:
    with pytest.raises(BadCredentials) as err:
        run(settings, smtp.credentials(**overrides), None)
    assert err.value.field == field
    assert smtp.logins == []


# -- TLS -----------------------------------------------------------------------------------------


def test_starttls_then_login_and_send(settings: Settings, trust_test_ca: None) -> None:
    with FakeSMTP(security="starttls") as smtp:
        assert run(settings, smtp.credentials(), None) == USERNAME
        run(settings, smtp.credentials(), "send_email", {"to": ["ada@example.com"], "subject": "TLS", "text": "hi"})
    [received] = smtp.received
    assert received.tls and received.login == USERNAME
    assert received.message["Subject"] == "TLS"


def test_implicit_tls(settings: Settings, trust_test_ca: None) -> None:
    with FakeSMTP(security="ssl") as smtp:
        run(settings, smtp.credentials(), "send_email", {"to": ["ada@example.com"], "subject": "SSL", "text": "hi"})
    [received] = smtp.received
    assert received.tls and received.login == USERNAME


def test_an_untrusted_certificate_is_refused(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbound, "_ssl_context", None)  # the default trust store: no test CA in it
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with FakeSMTP(security="starttls") as smtp:
        with pytest.raises(ConnectorError) as err:
            run(settings, smtp.credentials(), None)
        assert smtp.logins == []  # the password never went out
    assert err.value.field == "host" and "certificate" in err.value.reason


def test_plain_against_a_server_that_wants_tls_first(settings: Settings) -> None:
    with FakeSMTP(security="starttls") as smtp, pytest.raises(BadCredentials) as err:
        run(settings, smtp.credentials(security="none"), None)
    assert err.value.field == "security" and "AUTH" in err.value.reason


def test_starttls_against_a_server_without_it(settings: Settings, smtp: FakeSMTP) -> None:
    with pytest.raises(BadCredentials) as err:
        run(settings, smtp.credentials(security="starttls"), None)
    assert err.value.field == "security" and "STARTTLS" in err.value.reason
    assert smtp.logins == []


# -- send_email ----------------------------------------------------------------------------------


def test_send_email_with_cc_bcc_and_html(settings: Settings, smtp: FakeSMTP) -> None:
    inputs = {
        "to": ["ada@example.com", "grace@example.com"],
        "cc": ["team@example.com"],
        "bcc": ["archive@example.com"],
        "subject": "Réunion déplacée à 10:00",
        "text": "Hi Ada,\nthe design review now starts at 10:00.\n",
        "html": "<p>Hi Ada, the design review now starts at <b>10:00</b>.</p>\n",
    }
    answer = run(settings, smtp.credentials(), "send_email", inputs)
    everyone = ["ada@example.com", "grace@example.com", "team@example.com", "archive@example.com"]
    assert answer["accepted"] == everyone and answer["refused"] == []
    [received] = smtp.received
    assert received.mail_from == USERNAME
    assert received.rcpt_tos == everyone
    message = received.message
    assert message["From"] == USERNAME
    assert message["To"] == "ada@example.com, grace@example.com"
    assert message["Cc"] == "team@example.com"
    assert message["Bcc"] is None and b"archive@example.com" not in received.data
    assert message["Subject"] == inputs["subject"]
    assert message["Message-ID"] == answer["message_id"] and answer["message_id"].endswith("@example.com>")
    assert message["Date"] is not None
    assert parts(message) == ["multipart/alternative", "text/plain", "text/html"]
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == inputs["text"]
    assert html.get_content() == inputs["html"]


def test_send_email_text_only_is_one_part(settings: Settings, smtp: FakeSMTP) -> None:
    answer = run(settings, smtp.credentials(), "send_email", {"to": ["ada@example.com"], "subject": "s", "text": "body"})
    message = smtp.messages[0]
    assert parts(message) == ["text/plain"]
    assert message.get_content() == "body\n"
    assert answer["accepted"] == ["ada@example.com"]


def test_a_from_address_with_a_name(settings: Settings, smtp: FakeSMTP) -> None:
    creds = smtp.credentials(from_address=f"Chronary Calendar <{USERNAME}>")
    run(settings, creds, "send_email", {"to": ["ada@example.com"], "subject": "s", "text": "body"})
    [received] = smtp.received
    assert received.mail_from == USERNAME
    assert received.message["From"].addresses[0].display_name == "Chronary Calendar"


def test_a_refused_recipient_is_answered_with_the_servers_reply(settings: Settings, smtp: FakeSMTP) -> None:
    smtp.refuse("nobody@example.com")
    inputs = {"to": ["ada@example.com", "nobody@example.com"], "bcc": ["archive@example.com"], "subject": "s", "text": "t"}
    answer = run(settings, smtp.credentials(), "send_email", inputs)
    assert answer["accepted"] == ["ada@example.com", "archive@example.com"]
    [refused] = answer["refused"]
    assert refused["address"] == "nobody@example.com" and refused["code"] == 550
    assert "User unknown" in refused["reason"]
    assert smtp.received[0].rcpt_tos == ["ada@example.com", "archive@example.com"]


def test_every_recipient_refused_is_a_bad_input(settings: Settings, smtp: FakeSMTP) -> None:
    smtp.refuse("nobody@example.com")
    with pytest.raises(BadInput) as err:
        run(settings, smtp.credentials(), "send_email", {"to": ["nobody@example.com"], "subject": "s", "text": "t"})
    assert err.value.field == "to" and "nobody@example.com" in err.value.reason and "550" in err.value.reason
    assert smtp.received == []


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"to": ["ada@example.com"], "subject": "hi\r\nBcc: eve@example.com", "text": "t"}, "subject"),
        ({"to": ["ada@example.com\r\nBcc: eve@example.com"], "subject": "s", "text": "t"}, "to"),
        ({"to": ["ada@example.com"], "cc": ["Ada <ada@example.com>, eve@example.com"], "subject": "s", "text": "t"}, "cc"),
    ],
)
def test_header_injection_is_refused(settings: Settings, smtp: FakeSMTP, inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInput) as err:
        run(settings, smtp.credentials(), "send_email", inputs)
    assert err.value.field == field
    assert smtp.received == [] and smtp.logins == []


def test_an_unknown_action_is_refused(settings: Settings, smtp: FakeSMTP) -> None:
    with pytest.raises(BadInput) as err:
        run(settings, smtp.credentials(), "send_fax", {})
    assert err.value.field == "actionName"


# -- send_invitation -----------------------------------------------------------------------------


def test_an_invitation_then_its_cancellation(settings: Settings, smtp: FakeSMTP) -> None:
    to = ["ada@example.com", "grace@example.com"]
    sent = run(settings, smtp.credentials(), "send_invitation", {"to": to, "event": EVENT, "text": "Looking forward to it."})
    assert sent["method"] == "REQUEST" and sent["sequence"] == 0
    assert sent["uid"].endswith("@chronary") and len(sent["uid"]) > len("@chronary") + 30
    assert sent["accepted"] == to and sent["refused"] == []

    message = smtp.messages[0]
    assert message["Subject"] == "Invitation: Design review"
    assert message["Message-ID"] == sent["message_id"]
    assert parts(message) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/calendar",
        "application/ics",
    ]
    inline, attached, part = calendar_of(message)
    assert part.get_param("method") == "REQUEST" and part.get_content_charset() == "utf-8"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "invite.ics"
    assert inline.to_ical() == attached.to_ical()
    note = message.get_body(("plain",))
    assert note is not None and note.get_content().startswith("Looking forward to it.\n")
    assert "Design review" in note.get_content() and "Room 4.01" in note.get_content()

    assert inline["METHOD"] == "REQUEST" and inline["VERSION"] == "2.0" and "Chronary" in str(inline["PRODID"])
    [tz] = inline.walk("VTIMEZONE")
    assert tz["TZID"] == "Europe/Berlin"
    [event] = inline.walk("VEVENT")
    assert event["UID"] == sent["uid"]
    assert event["SEQUENCE"] == 0
    assert event["SUMMARY"] == "Design review" and event["LOCATION"] == "Room 4.01"
    assert event["DESCRIPTION"] == EVENT["description"]
    assert event["STATUS"] == "CONFIRMED"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert str(start.tzinfo) == "Europe/Berlin" and start.replace(tzinfo=None) == datetime(2025, 3, 10, 9, 0)
    assert start == datetime(2025, 3, 10, 8, 0, tzinfo=UTC) and end == datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    assert event.decoded("DTSTAMP").tzinfo is not None
    assert event["ORGANIZER"] == f"mailto:{USERNAME}"
    attendees: Any = event["ATTENDEE"]
    assert [str(a) for a in attendees] == [f"mailto:{a}" for a in to]
    for attendee in attendees:
        assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
        assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
        assert attendee.params["RSVP"] == "TRUE"

    cancel = {"to": to, "method": "CANCEL", "event": {**EVENT, "uid": sent["uid"], "sequence": 1}}
    cancelled = run(settings, smtp.credentials(), "send_invitation", cancel)
    assert (cancelled["method"], cancelled["uid"], cancelled["sequence"]) == ("CANCEL", sent["uid"], 1)
    message = smtp.messages[1]
    assert message["Subject"] == "Cancelled: Design review"
    inline, _, part = calendar_of(message)
    assert part.get_param("method") == "CANCEL"
    assert inline["METHOD"] == "CANCEL"
    [event] = inline.walk("VEVENT")
    assert event["UID"] == sent["uid"] and event["SEQUENCE"] == 1 and event["STATUS"] == "CANCELLED"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    note = message.get_body(("plain",))
    assert note is not None and "cancelled" in note.get_content()


def test_an_invitation_without_a_timezone_is_in_utc(settings: Settings, smtp: FakeSMTP) -> None:
    event = {"title": "Call", "start_time": "2025-03-10T09:30:00-05:00", "end_time": "2025-03-10T10:00:00-05:00"}
    run(
        settings, smtp.credentials(), "send_invitation", {"to": ["ada@example.com"], "event": event, "subject": "Quick call"}
    )
    message = smtp.messages[0]
    assert message["Subject"] == "Quick call"
    inline, _, _ = calendar_of(message)
    assert list(inline.walk("VTIMEZONE")) == []
    [vevent] = inline.walk("VEVENT")
    assert "TZID" not in vevent["DTSTART"].params
    assert vevent.decoded("DTSTART") == datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
    assert vevent["DTSTART"].to_ical() == b"20250310T143000Z"


def test_an_all_day_invitation_uses_dates(settings: Settings, smtp: FakeSMTP) -> None:
    event = {"title": "Offsite", "start_time": "2025-03-10", "end_time": "2025-03-12", "all_day": True, "uid": "abc@x"}
    sent = run(settings, smtp.credentials(), "send_invitation", {"to": ["ada@example.com"], "event": event})
    assert sent["uid"] == "abc@x"
    inline, _, _ = calendar_of(smtp.messages[0])
    [vevent] = inline.walk("VEVENT")
    assert vevent.decoded("DTSTART") == date(2025, 3, 10) and vevent.decoded("DTEND") == date(2025, 3, 12)
    assert vevent["DTSTART"].to_ical() == b"20250310"
    assert b"DTSTART;VALUE=DATE:20250310" in inline.to_ical()


@pytest.mark.parametrize(
    ("method", "event", "field"),
    [
        ("CANCEL", EVENT, "event.uid"),
        ("REQUEST", {**EVENT, "start_time": "next tuesday"}, "event.start_time"),
        ("REQUEST", {**EVENT, "start_time": "2025-03-10"}, "event.start_time"),
        ("REQUEST", {**EVENT, "timezone": None, "end_time": "2025-03-10T10:00:00"}, "event.end_time"),
        ("REQUEST", {**EVENT, "end_time": "2025-03-10T08:00:00+01:00"}, "event.end_time"),
        ("REQUEST", {**EVENT, "timezone": "Mars/Olympus_Mons"}, "event.timezone"),
        ("REQUEST", {**EVENT, "timezone": "../../etc/passwd"}, "event.timezone"),
        ("REQUEST", {**EVENT, "all_day": True, "start_time": "2025-02-30", "end_time": "2025-03-02"}, "event.start_time"),
        ("REQUEST", {**EVENT, "sequence": -1}, "event.sequence"),
    ],
)
def test_invitation_inputs_that_cannot_be_sent(
    settings: Settings, smtp: FakeSMTP, method: str, event: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadInput) as err:
        run(settings, smtp.credentials(), "send_invitation", {"to": ["ada@example.com"], "method": method, "event": event})
    assert err.value.field == field
    assert smtp.received == [] and smtp.logins == []


def test_an_invitation_needs_the_event(settings: Settings, smtp: FakeSMTP) -> None:
    inputs = {"to": ["ada@example.com"], "calendar_id": "cal_1", "event_id": "evt_1"}  # the service resolves these
    with pytest.raises(BadInput) as err:
        run(settings, smtp.credentials(), "send_invitation", inputs)
    assert err.value.field == "event"
    assert smtp.received == []


def test_an_invitation_to_a_refused_attendee(settings: Settings, smtp: FakeSMTP) -> None:
    smtp.refuse("gone@example.com", 550, "5.1.1 mailbox unavailable")
    to = ["ada@example.com", "gone@example.com"]
    sent = run(settings, smtp.credentials(), "send_invitation", {"to": to, "event": EVENT})
    assert sent["accepted"] == ["ada@example.com"]
    assert sent["refused"] == [{"address": "gone@example.com", "code": 550, "reason": "5.1.1 mailbox unavailable"}]
    inline, _, _ = calendar_of(smtp.messages[0])
    [vevent] = inline.walk("VEVENT")
    attendees: Any = vevent["ATTENDEE"]
    assert len(attendees) == 2  # the invitation still names everyone invited


def test_an_invitation_for_a_chronary_event_as_the_service_hands_it(settings: Settings, smtp: FakeSMTP) -> None:
    # the Connect service resolves calendar_id + event_id into this: UTC timestamps and the calendar's zone
    event = {
        "uid": "evt_01J9Z3M2W7R5T8Y1U4I6O9P0A2@chronary",
        "sequence": 2,
        "title": "Design review",
        "start_time": "2025-07-01T07:00:00Z",
        "end_time": "2025-07-01T08:30:00Z",
        "all_day": False,
        "timezone": "Europe/Berlin",
    }
    sent = run(settings, smtp.credentials(), "send_invitation", {"to": ["ada@example.com"], "event": event})
    assert (sent["uid"], sent["sequence"], sent["method"]) == (event["uid"], 2, "REQUEST")
    inline, _, _ = calendar_of(smtp.messages[0])
    [vevent] = inline.walk("VEVENT")
    assert b"DTSTART;TZID=Europe/Berlin:20250701T090000" in vevent.to_ical()  # summer time: UTC+2
    assert b"DTEND;TZID=Europe/Berlin:20250701T103000" in vevent.to_ical()
    assert vevent["SEQUENCE"] == 2
