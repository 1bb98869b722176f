"""Subscribed iCal feeds (.ics over http, https or webcal): read-only calendars refreshed on a schedule."""

from __future__ import annotations

from chronary.catalogue import CredentialField, Provider

PROVIDER = Provider(
    type="ical",
    name="iCal subscription",
    category="calendar",
    description=(
        "Subscribe an agent's calendar to a published iCalendar feed (holidays, a team's shared calendar, an "
        "export link). Imported events are read-only and block availability."
    ),
    auth="none",
    docs_url="https://www.rfc-editor.org/rfc/rfc5545",
    credentials=(
        CredentialField(
            name="url",
            label="Feed URL",
            description="The feed's address (http, https or webcal)",
            format="url",
        ),
        CredentialField(
            name="username",
            label="Username",
            description="For a feed behind HTTP Basic authentication",
            required=False,
        ),
        CredentialField(
            name="password",
            label="Password",
            description="For a feed behind HTTP Basic authentication",
            secret=True,
            required=False,
        ),
    ),
    capabilities=("calendar_sync",),
    connect_via="/v1/agents/{agent_id}/ical-subscriptions",
)
