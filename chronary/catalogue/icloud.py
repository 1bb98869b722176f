"""iCloud calendars over CalDAV: two-way sync with an Apple ID and an app-specific password."""

from __future__ import annotations

from chronary.catalogue import CredentialField, Provider

PROVIDER = Provider(
    type="icloud",
    name="iCloud Calendar",
    category="calendar",
    description=(
        "Connect an Apple account's iCloud calendars over CalDAV. Apple refuses the account password for "
        "other apps: create an app-specific password at account.apple.com (Sign-In and Security; needs "
        "two-factor authentication)."
    ),
    auth="basic",
    docs_url="https://support.apple.com/en-us/102654",
    credentials=(
        CredentialField(
            name="username",
            label="Apple ID",
            description="The Apple account's email address",
            format="email",
        ),
        CredentialField(
            name="password",
            label="App-specific password",
            description="An app-specific password (xxxx-xxxx-xxxx-xxxx), not the account password",
            secret=True,
        ),
        CredentialField(
            name="server_url",
            label="Server",
            description="The iCloud CalDAV server; the default finds the account's calendars",
            required=False,
            default="https://caldav.icloud.com",
            format="url",
        ),
    ),
    base_url="https://caldav.icloud.com",
    capabilities=("calendar_sync",),
    connect_via="/v1/connections",
)
