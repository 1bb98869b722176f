"""Any CalDAV server (Nextcloud, Radicale, Fastmail, Baïkal, …): two-way sync with a login."""

from __future__ import annotations

from chronary.catalogue import CredentialField, Provider

PROVIDER = Provider(
    type="caldav",
    name="CalDAV",
    category="calendar",
    description=(
        "Connect calendars on any CalDAV server (RFC 4791) with a username and password; the calendars are "
        "discovered from the server URL (or its /.well-known/caldav) and mirrored both ways."
    ),
    auth="basic",
    docs_url="https://www.rfc-editor.org/rfc/rfc4791",
    credentials=(
        CredentialField(
            name="server_url",
            label="Server URL",
            description="The CalDAV server or principal URL, e.g. https://cloud.example.com/remote.php/dav",
            format="url",
        ),
        CredentialField(name="username", label="Username", description="The account's login name"),
        CredentialField(
            name="password",
            label="Password",
            description="The account's password or an app password the server issued",
            secret=True,
        ),
    ),
    capabilities=("calendar_sync",),
    connect_via="/v1/connections",
)
