"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, with logins, TLS and refusable recipients.

    with FakeSMTP() as smtp:                      # plain; AUTH LOGIN/PLAIN offered without TLS
    with FakeSMTP(security="starttls") as smtp:   # STARTTLS required; AUTH only after it
    with FakeSMTP(security="ssl") as smtp:        # implicit TLS from the first byte

TLS uses the test CA from `tests.fakes.tls` (`smtp.tls.client_context()` trusts it). Every
variant requires a login as `username`/`password` before MAIL (530 otherwise) and answers a
wrong one with 535. `refuse(address)` makes RCPT TO answer 550 for that address. What arrived
is kept in `received` (envelope sender, recipients, raw bytes and the parsed message, read with
the modern `email.policy.default`); `logins` lists the accepted and refused login attempts.
`echo_credentials` makes the 535 answer repeat what the client sent, as a careless server
might, so tests can check that the connector keeps the password out of its reasons.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes.tls import TLS, make_tls

USERNAME = "calendar@example.com"
PASSWORD = "app-pässword-0123456789"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    tls: bool  # the message came over TLS (STARTTLS or implicit)
    login: str | None  # who was logged in


@dataclass
class Login:
    mechanism: str
    username: str
    ok: bool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Handler:
    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refused = self.fake.refused.get(address.lower())
        if refused is not None:
            return f"{refused[0]} {refused[1]}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        # stored as a mail store keeps it: local line ends (the raw wire bytes stay in `data`)
        message = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.fake.lock:
            tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
            login = session.auth_data if isinstance(session.auth_data, str) else None
            self.fake.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data, message, tls, login))
        return "250 2.0.0 Ok: queued as FAKE"


class _Controller(Controller):
    """Plain and implicit-TLS variants take AUTH without STARTTLS on purpose (aiosmtpd counts only
    STARTTLS as TLS); built as auth_require_tls=True and switched off after, because aiosmtpd
    warns about that combination on every connection."""

    def __init__(self, *args: Any, auth_without_starttls: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth_without_starttls = auth_without_starttls

    def factory(self) -> SMTP:
        server = super().factory()
        if self.auth_without_starttls:
            server._auth_require_tls = False
        return server


class FakeSMTP:
    def __init__(
        self,
        *,
        security: str = "none",
        username: str = USERNAME,
        password: str = PASSWORD,
        tls: TLS | None = None,
        echo_credentials: bool = False,
    ) -> None:
        assert security in ("none", "starttls", "ssl")
        self.security = security
        self.username = username
        self.password = password
        self.tls = tls or make_tls()
        self.echo_credentials = echo_credentials
        self.host = "127.0.0.1"
        self.port = 0
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.logins: list[Login] = []
        self.refused: dict[str, tuple[int, str]] = {}
        self._controller: _Controller | None = None

    # -- controls --------------------------------------------------------------------------------
    def refuse(self, address: str, code: int = 550, text: str | None = None) -> None:
        reply = text or f"5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
        self.refused[address.lower()] = (code, reply)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]

    # -- the server ------------------------------------------------------------------------------
    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        ok = login == self.username and password == self.password
        with self.lock:
            self.logins.append(Login(mechanism, login, ok))
        if ok:
            return AuthResult(success=True, auth_data=login)
        if self.echo_credentials:
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 Bad login {login} / {password}")
        return AuthResult(success=False, handled=False)

    def start(self) -> FakeSMTP:
        context = self.tls.server_context()
        kwargs: dict[str, Any] = {"authenticator": self._authenticate, "auth_required": True}
        if self.security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if self.security == "ssl":
            kwargs["ssl_context"] = context
        self.port = _free_port()
        self._controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            auth_without_starttls=self.security != "starttls",
            **kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> FakeSMTP:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def credentials(self, **overrides: str) -> dict[str, str]:
        """Connection credentials for this server, as the Connect service hands them over."""
        creds = {
            "host": self.host,
            "port": str(self.port),
            "security": self.security,
            "username": self.username,
            "password": self.password,
            "from_address": self.username,
        }
        creds.update(overrides)
        return {k: v for k, v in creds.items() if v != ""}
