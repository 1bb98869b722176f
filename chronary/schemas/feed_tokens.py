"""Per-device feed token shapes (`ftk_`): each token is its own feed URL with its own scope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from chronary.schemas.common import Input, Name, Timestamp

ScopeKind = Annotated[
    Literal["full", "busy", "window"],
    Meta(
        description=(
            "full: the calendar's feed as `ical_url` serves it; busy: every event with its times, "
            "recurrence and status, titled Busy, with no description, location, attendees, "
            "organizer, URL, categories, alarms or X- properties; window: only the events "
            "overlapping a rolling window of days around today (in the calendar's timezone)"
        )
    ),
]
PastDays = Annotated[int, Meta(ge=0, le=3650, description="window: days before today it starts (default 30)")]
FutureDays = Annotated[int, Meta(ge=0, le=3650, description="window: days after today it ends (default 365)")]


class FeedScope(Input):
    """What a token's feed shows. `past_days`, `future_days` and `busy` apply to kind `window` only."""

    kind: ScopeKind = "full"
    past_days: PastDays | None = None
    future_days: FutureDays | None = None
    busy: Annotated[bool, Meta(description="window: also hide the details, as kind busy does")] = False


class FeedTokenCreate(Input):
    """A new feed URL for one device or person; revoke it alone when that device is lost."""

    label: Annotated[Name, Meta(description="Whose or which device's URL this is, e.g. 'Ada's phone'")]
    scope: FeedScope = msgspec.field(default_factory=FeedScope)


class FeedScopeOut(msgspec.Struct):
    kind: str
    past_days: int | None
    future_days: int | None
    busy: bool


class FeedToken(msgspec.Struct):
    """A feed token (no URL: it is stored as a hash). `last_fetched_at` and `last_user_agent`: the
    latest read of its URL and the client that made it, recorded at most once a minute."""

    id: str
    calendar_id: str
    label: str
    scope: FeedScopeOut
    created_at: Timestamp
    last_fetched_at: Timestamp | None
    last_user_agent: Annotated[
        str | None, Meta(description="The User-Agent of that read (the client), at most 256 characters")
    ]


class FeedTokenWithUrl(FeedToken):
    ical_url: Annotated[
        str, Meta(description="The token's feed URL: shown in this response only (the token is stored as a hash)")
    ]
    webcal_url: Annotated[str, Meta(description="The same URL as webcal://, which calendar apps open to subscribe")]


class FeedTokenList(msgspec.Struct):
    data: list[FeedToken]
    total: int
    limit: int
    offset: int
