"""Email through the user's SMTP server: `send_email`, and `send_invitation` as iMIP (RFC 6047).

The standard library speaks SMTP (`smtplib`, in a thread): EHLO, STARTTLS or implicit TLS as
`security` says (verified against the trust store outbound HTTP uses), AUTH when a username is
set, then the message. Before connecting, the host is resolved and its addresses pass the
outbound guard (`check_addresses`); the connection goes to exactly those addresses, with TLS
still checking the certificate against the host name, so a second DNS answer cannot redirect it.

An invitation is an iTIP message (RFC 5546) carried as RFC 6047 describes and as Gmail and
Outlook send it: `multipart/mixed` holding a `multipart/alternative` (a text/plain note and the
`text/calendar; method=REQUEST` part calendar apps act on) plus the same VCALENDAR attached as
`invite.ics`. The VCALENDAR (built with `icalendar`) has METHOD REQUEST or CANCEL and one VEVENT
whose ORGANIZER is `from_address` and whose ATTENDEEs are the recipients; timed events carry a
TZID (and its VTIMEZONE) when a timezone is given, else UTC; all-day events are DATE values.

Reasons never carry the password; a server's own text is passed on (short, printable) because it
is what tells the user why a login or recipient was refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import re
import smtplib
import socket
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, vCalAddress

from chronary.connectors import base
from chronary.connectors.base import BadCredentials, BadInput, ConnectorError, Unreachable
from chronary.ical import render
from chronary.outbound import IPAddress, OutboundError, check_addresses, parse_url, resolve, ssl_context

SECURITIES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
METHODS = ("REQUEST", "CANCEL")
_ADDRESS = re.compile(r'[^\s@<>()\[\],;:"\\]+@[^\s@<>()\[\],;:"\\]+')
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_AUTH_ROUNDS = 5


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    sender: str  # the envelope sender / ORGANIZER address
    from_header: str  # the From header as the user wrote it (may carry a display name)
    sender_name: str


@dataclass(frozen=True)
class _Mail:
    message: EmailMessage
    recipients: list[str]


class Connector(base.Connector):
    type = "smtp"

    # -- credentials ---------------------------------------------------------------------------
    def _server(self) -> _Server:
        security = (self.cred("security", "starttls") or "starttls").lower()
        if security not in SECURITIES:
            raise BadCredentials("security must be starttls, ssl or none", field="security")
        raw_host = (self.cred("host") or "").strip()
        if not raw_host:
            raise BadCredentials("host is required", field="host")
        if any(c in raw_host for c in "/?#@\\") or raw_host.count(":") == 1:  # a URL or host:port, not a host
            raise BadCredentials("host must be the server's name or IP address alone (the port has its field)", field="host")
        bracketed = f"[{raw_host}]" if ":" in raw_host and not raw_host.startswith("[") else raw_host  # IPv6
        try:
            host = parse_url(f"smtp://{bracketed}/", ("smtp",)).host
        except OutboundError:
            raise BadCredentials("host is not a valid host name or IP address", field="host") from None
        raw_port = (self.cred("port") or "").strip()
        if not raw_port:
            port = DEFAULT_PORTS[security]
        elif raw_port.isascii() and raw_port.isdigit() and 0 < int(raw_port) < 65536:
            port = int(raw_port)
        else:
            raise BadCredentials("port must be a number from 1 to 65535", field="port")
        name, sender = parseaddr(self.cred("from_address") or "")
        if not _ADDRESS.fullmatch(sender) or not sender.isprintable():
            raise BadCredentials("from_address must be an email address", field="from_address")
        from_header = self.cred("from_address") or sender
        if "\r" in from_header or "\n" in from_header:
            raise BadCredentials("from_address must be an email address", field="from_address")
        username = self.cred("username")
        password = self.cred("password")
        if username is None and password is not None:
            raise BadCredentials("a password needs a username", field="username")
        return _Server(host, port, security, username, password, sender, from_header, name)

    # -- the SMTP session (blocking; run in a thread) ------------------------------------------
    def _session(self, server: _Server, mail: _Mail | None) -> dict[str, tuple[int, bytes]]:
        """Connect, secure, log in and (with `mail`) send; answers the refused recipients."""
        where = f"{server.host}:{server.port}"
        try:
            addresses = resolve(server.host, server.port)
        except OutboundError as exc:
            raise Unreachable(exc.reason, field="host") from None
        try:
            check_addresses(server.host, server.port, addresses, self.settings)
        except OutboundError as exc:
            raise ConnectorError(exc.reason, field="host") from None
        timeout = float(self.settings.connect_proxy_timeout_seconds)
        context = ssl_context()
        smtp: smtplib.SMTP
        if server.security == "ssl":
            smtp = _GuardedSMTPSSL(addresses, server.host, timeout, context)
        else:
            smtp = _GuardedSMTP(addresses, server.host, timeout)
        try:
            smtp.connect(server.host, server.port)
            smtp.ehlo()
            if server.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise BadCredentials(
                        f"{where} does not offer STARTTLS; choose security ssl (port 465) or none", field="security"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if server.username is not None:
                if not smtp.has_extn("auth"):
                    advice = "; it may require TLS first" if server.security == "none" else ""
                    raise BadCredentials(
                        f"{where} offers no login (AUTH) on this connection{advice}",
                        field="security" if server.security == "none" else "username",
                    )
                smtp.login(server.username, server.password or "")
            refused: dict[str, tuple[int, bytes]] = {}
            if mail is not None:
                refused = smtp.send_message(mail.message, from_addr=server.sender, to_addrs=mail.recipients)
            with contextlib.suppress(OSError):  # smtplib's errors are OSErrors too
                smtp.quit()
            return refused
        except ConnectorError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise BadCredentials(
                f"{where} refused the login: {self._said(exc.smtp_code, exc.smtp_error)}", field="password"
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code == 530:  # "Authentication required": the connection has no username
                raise BadCredentials(
                    f"{where} requires a login: {self._said(exc.smtp_code, exc.smtp_error)}", field="username"
                ) from None
            raise ConnectorError(
                f"{where} refused the sender {server.sender}: {self._said(exc.smtp_code, exc.smtp_error)}",
                field="from_address",
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            listed = "; ".join(f"{addr} ({self._said(code, text)})" for addr, (code, text) in exc.recipients.items())
            raise BadInput(f"{where} refused every recipient: {listed}", field="to") from None
        except smtplib.SMTPDataError as exc:
            raise ConnectorError(f"{where} refused the message: {self._said(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectorError(f"{where} does not support what the message needs: {exc}") from None
        except smtplib.SMTPServerDisconnected:
            raise Unreachable(f"{where} closed the connection") from None
        except smtplib.SMTPResponseException as exc:
            raise ConnectorError(f"{where} answered {self._said(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPException as exc:
            raise ConnectorError(f"the SMTP conversation with {where} failed: {type(exc).__name__}") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectorError(
                f"the TLS certificate of {server.host} is not valid: {exc.verify_message}", field="host"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectorError(
                f"TLS with {where} failed ({exc.reason or type(exc).__name__}); does security {server.security} "
                "match the port?",
                field="security",
            ) from None
        except TimeoutError:
            raise Unreachable(f"{where} did not answer within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise Unreachable(f"{where} refused the connection") from None
        except OSError as exc:
            raise Unreachable(f"could not reach {where}: {exc.strerror or type(exc).__name__}") from None
        finally:
            smtp.close()

    def _text(self, text: bytes | str) -> str:
        """A server's reply text, short and printable, without the password."""
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        said = "".join(c for c in " ".join(said.split()) if c.isprintable())[:200]
        password = self.cred("password")
        return said.replace(password, "<password>") if password else said

    def _said(self, code: int, text: bytes | str) -> str:
        return f"{code} {self._text(text)}".strip()

    async def _send(self, server: _Server, mail: _Mail | None) -> dict[str, tuple[int, bytes]]:
        return await asyncio.to_thread(self._session, server, mail)

    # -- the interface -------------------------------------------------------------------------
    async def check(self) -> str | None:
        server = self._server()
        await self._send(server, None)
        return server.username or server.sender

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action == "send_email":
            return await self._send_email(inputs)
        if action == "send_invitation":
            return await self._send_invitation(inputs)
        return await super().run(action, inputs)

    async def _send_email(self, inputs: dict[str, Any]) -> dict[str, Any]:
        server = self._server()
        to, cc, bcc = (_addresses(inputs.get(name), name) for name in ("to", "cc", "bcc"))
        if not to:
            raise BadInput("to needs at least one recipient", field="to")
        message = _headers(server, to, cc, _header_text(inputs.get("subject", ""), "subject"))
        message.set_content(_body(inputs.get("text", ""), "text"))
        if inputs.get("html"):
            message.add_alternative(_body(inputs["html"], "html"), subtype="html")
        return await self._deliver(server, message, [*to, *cc, *bcc])

    async def _deliver(self, server: _Server, message: EmailMessage, recipients: list[str]) -> dict[str, Any]:
        envelope: list[str] = []
        for recipient in recipients:  # once each (addresses compare case-insensitively here), in order
            if recipient.lower() not in {e.lower() for e in envelope}:
                envelope.append(recipient)
        refused = await self._send(server, _Mail(message, envelope))
        refused_lower = {addr.lower(): (addr, answer) for addr, answer in refused.items()}
        return {
            "message_id": message["Message-ID"],
            "accepted": [r for r in envelope if r.lower() not in refused_lower],
            "refused": [
                {"address": addr, "code": code, "reason": self._text(text)} for addr, (code, text) in refused_lower.values()
            ],
        }

    async def _send_invitation(self, inputs: dict[str, Any]) -> dict[str, Any]:
        server = self._server()
        to = _addresses(inputs.get("to"), "to")
        if not to:
            raise BadInput("to needs at least one attendee", field="to")
        method = str(inputs.get("method") or "REQUEST").upper()
        if method not in METHODS:
            raise BadInput("method must be REQUEST or CANCEL", field="method")
        event = inputs.get("event")
        if not isinstance(event, dict):
            raise BadInput("send_invitation needs the event (or calendar_id and event_id)", field="event")
        invite = _invitation(event, method)
        ics = _vcalendar(invite, method, server, to)
        cancelled = method == "CANCEL"
        default_subject = f"{'Cancelled' if cancelled else 'Invitation'}: {invite.title}"
        subject = inputs.get("subject") or default_subject
        message = _headers(server, to, [], _header_text(subject, "subject"))
        message.set_content(_note(invite, method, _body(inputs.get("text") or "", "text")))
        message.add_alternative(ics, subtype="calendar", charset="UTF-8", params={"method": method})
        message.add_attachment(
            ics.encode(), maintype="application", subtype="ics", filename="invite.ics", params={"name": "invite.ics"}
        )
        answer = await self._deliver(server, message, to)
        return {**answer, "uid": invite.uid, "sequence": invite.sequence, "method": method}


class _GuardedSMTP(smtplib.SMTP):
    """smtplib.SMTP connecting only to the addresses the outbound guard checked.

    `_host` stays the host name, so STARTTLS (and SMTP_SSL below) verify the certificate for it.
    """

    def __init__(self, addresses: Sequence[IPAddress], host: str, timeout: float, **kwargs: Any) -> None:
        self._addresses = list(addresses)
        super().__init__(timeout=timeout, **kwargs)
        self._host = host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        error: OSError = OSError(f"no address for {host}")
        for address in self._addresses:
            try:
                sock: socket.socket = super()._get_socket(str(address), port, timeout)  # type: ignore[misc]
                return sock
            except ssl.SSLError:  # TLS failed on an open connection: another address will not help
                raise
            except OSError as exc:
                error = exc
        raise error

    # smtplib encodes AUTH responses as ASCII, so a password such as "pässword" fails with a
    # UnicodeEncodeError; RFC 4616 (PLAIN) and RFC 4954 take UTF-8, which servers expect.
    def auth(self, mechanism: str, authobject: Any, *, initial_response_ok: bool = True) -> tuple[int, bytes]:
        # smtplib's auth_login reads _auth_challenge_count to tell the username round from the password's
        mechanism = mechanism.upper()
        first = authobject() if initial_response_ok else None
        if first is not None:
            code, reply = self.docmd("AUTH", f"{mechanism} {_b64(first)}")
            self._auth_challenge_count = 1
        else:
            code, reply = self.docmd("AUTH", mechanism)
            self._auth_challenge_count = 0
        while code == 334:
            self._auth_challenge_count += 1
            if self._auth_challenge_count > _MAX_AUTH_ROUNDS:
                raise smtplib.SMTPException("the server kept sending AUTH challenges")
            code, reply = self.docmd(_b64(authobject(base64.decodebytes(reply))))
        if code in (235, 503):  # 503: already authenticated
            return code, reply
        raise smtplib.SMTPAuthenticationError(code, reply)

    def auth_cram_md5(self, challenge: Any = None) -> Any:  # typeshed overloads: None → None, bytes → str
        if challenge is None:
            return None
        digest = hmac.new(self.password.encode("utf-8"), challenge, "md5").hexdigest()
        return f"{self.user} {digest}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class _GuardedSMTPSSL(_GuardedSMTP, smtplib.SMTP_SSL):
    def __init__(self, addresses: Sequence[IPAddress], host: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(addresses, host, timeout, context=context)


# -- inputs ------------------------------------------------------------------------------------


def _addresses(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(f"{field} must be a list of email addresses", field=field)
    found = []
    for item in value:
        address = item.strip() if isinstance(item, str) else ""
        if not _ADDRESS.fullmatch(address) or not address.isprintable():
            raise BadInput(f"{field} holds something that is not an email address: {str(item)[:100]!r}", field=field)
        found.append(address)
    return found


def _header_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{field} must be text", field=field)
    if "\r" in value or "\n" in value:
        raise BadInput(f"{field} may not contain line breaks", field=field)
    return value


def _body(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{field} must be text", field=field)
    return value


def _headers(server: _Server, to: list[str], cc: list[str], subject: str) -> EmailMessage:
    message = EmailMessage()
    try:
        message["From"] = server.from_header
    except (ValueError, IndexError):
        raise BadCredentials("from_address must be an email address", field="from_address") from None
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=server.sender.rpartition("@")[2])
    return message


@dataclass(frozen=True)
class _Invitation:
    uid: str
    sequence: int
    title: str
    start: datetime | date
    end: datetime | date
    all_day: bool
    tz: tzinfo | None  # None: UTC
    tzid: str | None
    description: str | None
    location: str | None


def _text_field(event: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        if required:
            raise BadInput(f"event.{name} is required", field=f"event.{name}")
        return None
    if not isinstance(value, str):
        raise BadInput(f"event.{name} must be text", field=f"event.{name}")
    return value


def _invitation(event: dict[str, Any], method: str) -> _Invitation:
    uid = _text_field(event, "uid")
    if uid is None:
        if method == "CANCEL":
            raise BadInput("a CANCEL needs event.uid: the UID of the invitation it withdraws", field="event.uid")
        uid = f"{uuid.uuid4()}@chronary"
    if any(not c.isprintable() for c in uid):
        raise BadInput("event.uid may not contain control characters", field="event.uid")
    sequence = event.get("sequence", 0)
    if sequence is None:
        sequence = 0
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise BadInput("event.sequence must be a whole number from 0", field="event.sequence")
    title = _text_field(event, "title", required=True)
    assert title is not None
    tzid = _text_field(event, "timezone")
    tz: tzinfo | None = None
    if tzid is not None:
        try:
            tz = ZoneInfo(tzid)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput(f"event.timezone {tzid[:64]!r} is not an IANA time zone", field="event.timezone") from None
    all_day = event.get("all_day") is True
    start_text = _text_field(event, "start_time", required=True)
    end_text = _text_field(event, "end_time", required=True)
    assert start_text is not None and end_text is not None
    start: datetime | date
    end: datetime | date
    if all_day:
        start, end = _day(start_text, "start_time", tz), _day(end_text, "end_time", tz)
        if end <= start:
            raise BadInput("event.end_time must be after start_time (the end date is exclusive)", field="event.end_time")
    else:
        start, end = _instant(start_text, "start_time", tz), _instant(end_text, "end_time", tz)
        if end <= start:
            raise BadInput("event.end_time must be after start_time", field="event.end_time")
    if end - start > timedelta(days=366 * 5):
        raise BadInput("an event may last at most 5 years", field="event.end_time")
    return _Invitation(
        uid,
        sequence,
        title,
        start,
        end,
        all_day,
        tz,
        tzid,
        _text_field(event, "description"),
        _text_field(event, "location"),
    )


def _parse(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise BadInput(f"event.{name} is not an ISO 8601 timestamp: {value[:64]!r}", field=f"event.{name}") from None
    if not 1900 <= parsed.year <= 2200:
        raise BadInput(f"event.{name} must fall between the years 1900 and 2200", field=f"event.{name}")
    return parsed


def _instant(value: str, name: str, tz: tzinfo | None) -> datetime:
    if _DATE_ONLY.fullmatch(value):
        raise BadInput(f"event.{name} needs a time and offset unless all_day is true", field=f"event.{name}")
    parsed = _parse(value, name)
    if parsed.tzinfo is None:
        if tz is None:
            raise BadInput(f"event.{name} needs a UTC offset or Z (or event.timezone)", field=f"event.{name}")
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(tz or UTC).replace(microsecond=0)


def _day(value: str, name: str, tz: tzinfo | None) -> date:
    if _DATE_ONLY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadInput(f"event.{name} is not a valid date: {value!r}", field=f"event.{name}") from None
    parsed = _parse(value, name)  # a timestamp for an all-day event: its day where the event is shown
    if parsed.tzinfo is not None and tz is not None:
        parsed = parsed.astimezone(tz)
    return parsed.date()


def _vcalendar(invite: _Invitation, method: str, server: _Server, to: list[str]) -> str:
    cal = Calendar()
    cal.add("prodid", render.PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    if invite.tzid is not None and not invite.all_day:
        cal.add_component(Timezone.from_ical(render.vtimezone(invite.tzid, invite.start.year)))
    vevent = Event()
    vevent.add("uid", invite.uid)
    vevent.add("sequence", invite.sequence)
    vevent.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
    vevent.add("dtstart", invite.start)
    vevent.add("dtend", invite.end)
    vevent.add("summary", invite.title)
    if invite.description:
        vevent.add("description", invite.description)
    if invite.location:
        vevent.add("location", invite.location)
    organizer = vCalAddress(f"mailto:{server.sender}")
    if server.sender_name:
        organizer.params["CN"] = server.sender_name
    vevent.add("organizer", organizer)
    for address in to:
        attendee = vCalAddress(f"mailto:{address}")
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        vevent.add("attendee", attendee)
    vevent.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    vevent.add("transp", "OPAQUE")
    cal.add_component(vevent)
    text: str = cal.to_ical().decode()
    return text


def _when(invite: _Invitation) -> str:
    if invite.all_day:
        assert isinstance(invite.start, date) and isinstance(invite.end, date)
        last = invite.end - timedelta(days=1)
        days = invite.start.isoformat() if last == invite.start else f"{invite.start.isoformat()} – {last.isoformat()}"
        return f"{days} (all day)"
    assert isinstance(invite.start, datetime) and isinstance(invite.end, datetime)
    zone = invite.tzid or "UTC"
    fmt = "%a %Y-%m-%d %H:%M"
    end_fmt = "%H:%M" if invite.end.date() == invite.start.date() else fmt
    return f"{invite.start.strftime(fmt)} – {invite.end.strftime(end_fmt)} ({zone})"


def _note(invite: _Invitation, method: str, text: str) -> str:
    lines = [text.strip(), ""] if text.strip() else []
    if method == "CANCEL":
        lines.append(f"This event has been cancelled: {invite.title}")
    else:
        lines.append(f"You are invited to: {invite.title}")
    lines.append(f"When: {_when(invite)}")
    if invite.location:
        lines.append(f"Where: {invite.location}")
    if invite.description and method != "CANCEL":
        lines += ["", invite.description]
    return "\n".join(lines) + "\n"
