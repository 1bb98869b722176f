"""Local peers for the outbound-guard tests: a listener that counts every connection it gets
(standing in for this Chronary server's port on every address of the machine), a redirector
that answers 301/302 pointing wherever the test says, and an https server for a host name."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Sentinel:
    """Accepts and counts TCP connections on one port of every address (IPv4 and IPv6)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind(("::", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._closed = True
        self.sock.close()


class Redirector:
    """Answers every GET/PROPFIND/POST with `status` and `Location: target`; counts requests."""

    def __init__(self, target: str, status: int = 302) -> None:
        self.target, self.status, self.requests = target, status, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _redirect(self) -> None:
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(outer.status)
                self.send_header("Location", outer.target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PROPFIND = do_OPTIONS = _redirect  # noqa: N815 - http.server's naming

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def machine_addresses() -> list[str]:
    """Non-loopback addresses of this machine (the source address of a route; nothing is sent)."""
    found: list[str] = []
    probes = (
        (socket.AF_INET, ("192.0.2.123", 9)),
        (socket.AF_INET, ("10.255.255.1", 9)),
        (socket.AF_INET6, ("2001:db8::1", 9)),
    )
    for family, probe in probes:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            try:
                s.connect(probe)
                addr = s.getsockname()[0]
            except OSError:
                continue
        if not addr.startswith("127.") and addr != "::1" and addr not in found:
            found.append(addr)
    return found


class TlsFeedServer:
    """An https server on 127.0.0.1 with a self-signed certificate for `hostname`; it records the
    SNI name and Host header of each request, and answers a small calendar."""

    def __init__(self, hostname: str, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cafile = directory / f"{hostname}.pem"
        keyfile = directory / f"{hostname}.key"
        self.cafile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.sni: list[str | None] = []
        self.hosts: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.hosts.append(self.headers.get("Host"))
                body = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cafile, keyfile)
        context.sni_callback = lambda sock, server_name, ctx: outer.sni.append(server_name)  # type: ignore[assignment]
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
