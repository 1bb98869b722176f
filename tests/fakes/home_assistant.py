"""A local fake of Home Assistant's REST API, on the shared FakeServer, with a small state machine.

Endpoints: `GET /api/` ({"message": "API running."}), `GET /api/config`, `GET /api/states`,
`GET /api/states/<entity_id>`, `GET /api/services` and `POST /api/services/<domain>/<service>`
(with or without `?return_response`), answering as Home Assistant's `api` component does:

- no or a wrong `Authorization: Bearer` token: 401 with aiohttp's text "401: Unauthorized";
- a body that is not JSON: 400 {"message": "Data should be valid JSON."};
- an unknown service, or data its schema refuses: 400 with the text "400: Bad Request";
- return_response for a service without responses, or none for one that only answers
  responses: 400 with Home Assistant's own {"message": …};
- success: the list of states the call changed, or {"changed_states", "service_response"}.

Services: light.turn_on/turn_off/toggle (brightness_pct/brightness/rgb_color/color_temp_kelvin/
transition), switch.turn_on/turn_off/toggle, notify.mobile_app_pixel (message, title, data; kept
in `notifications`) and weather.get_forecasts (responses only). `answer_404_for_unknown = True`
plays an older or proxied instance that answers 404 for an unknown service.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request, route

TOKEN = "eyJhbGciOiJIUzI1NiJ9.fake-long-lived-token.c2lnbmF0dXJl"
NONE, OPTIONAL, ONLY = "none", "optional", "only"  # ha.SupportsResponse


class Invalid(Exception):
    """vol.Invalid: the service's schema refused the data (the API answers 400)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _text(status: int, text: str) -> Reply:
    return Reply.text(status, f"{status}: {text}")


class FakeHomeAssistant(FakeServer):
    def __init__(self, token: str = TOKEN, location_name: str = "Home") -> None:
        super().__init__()
        self.token = token
        self.location_name = location_name
        self.answer_404_for_unknown = False
        self.notifications: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (domain, service, data) that ran
        self.states: dict[str, dict[str, Any]] = {}
        self._contexts = itertools.count(1)
        self._state = threading.Lock()
        self.services: dict[str, dict[str, str]] = {
            "light": {"turn_on": NONE, "turn_off": NONE, "toggle": NONE},
            "switch": {"turn_on": NONE, "turn_off": NONE, "toggle": NONE},
            "notify": {"mobile_app_pixel": NONE},
            "weather": {"get_forecasts": ONLY},
        }
        self.set_state("light.office", "off", friendly_name="Office", supported_color_modes=["brightness"])
        self.set_state("light.hall", "on", friendly_name="Hall", brightness=255, supported_color_modes=["brightness"])
        self.set_state("switch.coffee", "off", friendly_name="Coffee machine")
        self.set_state("weather.home", "sunny", friendly_name="Home", temperature=18.5)

    # -- controls --------------------------------------------------------------------------------
    def set_state(self, entity_id: str, state: str, **attributes: Any) -> dict[str, Any]:
        now = _now()
        with self._state:
            previous = self.states.get(entity_id)
            changed = previous is None or previous["state"] != state
            new = {
                "entity_id": entity_id,
                "state": state,
                "attributes": attributes,
                "last_changed": now if changed else previous["last_changed"],  # type: ignore[index]
                "last_reported": now,
                "last_updated": now,
                "context": {"id": f"01JCTX{next(self._contexts):020d}", "parent_id": None, "user_id": None},
            }
            self.states[entity_id] = new
            return new

    # -- the REST API ----------------------------------------------------------------------------
    def _authorized(self, req: Request) -> bool:
        return req.header("authorization") == f"Bearer {self.token}"

    def not_found(self, req: Request) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        return _text(404, "Not Found")

    @route("GET", r"/api/")
    def api(self, req: Request) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        return Reply.json(200, {"message": "API running."})

    @route("GET", r"/api/config")
    def config(self, req: Request) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        return Reply.json(
            200,
            {
                "location_name": self.location_name,
                "latitude": 52.52,
                "longitude": 13.405,
                "elevation": 34,
                "unit_system": {"length": "km", "mass": "g", "temperature": "°C", "volume": "L"},
                "time_zone": "Europe/Berlin",
                "components": sorted({"api", "http", *self.services}),
                "version": "2025.1.0",
                "state": "RUNNING",
            },
        )

    @route("GET", r"/api/states")
    def all_states(self, req: Request) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        with self._state:
            return Reply.json(200, list(self.states.values()))

    @route("GET", r"/api/states/([a-z0-9_]+\.[a-z0-9_]+)")
    def one_state(self, req: Request, entity_id: str) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        with self._state:
            state = self.states.get(entity_id)
        return Reply.json(200, state) if state else Reply.json(404, {"message": "Entity not found."})

    @route("GET", r"/api/services")
    def list_services(self, req: Request) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        return Reply.json(
            200,
            [
                {"domain": domain, "services": {name: {"name": name, "description": "", "fields": {}} for name in services}}
                for domain, services in self.services.items()
            ],
        )

    @route("POST", r"/api/services/([^/]+)/([^/]+)")
    def call_service(self, req: Request, domain: str, service: str) -> Reply:
        if not self._authorized(req):
            return _text(401, "Unauthorized")
        try:
            data = json.loads(req.body) if req.body else None
        except ValueError:
            return Reply.json(400, {"message": "Data should be valid JSON."})
        supports = self.services.get(domain, {}).get(service)
        if supports is None:
            return _text(404, "Not Found") if self.answer_404_for_unknown else _text(400, "Bad Request")
        response_requested = "return_response" in req.query
        if response_requested and supports == NONE:
            return Reply.json(400, {"message": "Service does not support responses. Remove return_response from request."})
        if not response_requested and supports == ONLY:
            return Reply.json(
                400,
                {
                    "message": "Service call requires responses but caller did not ask for responses. "
                    "Add ?return_response to query parameters."
                },
            )
        if data is not None and not isinstance(data, dict):
            return _text(400, "Bad Request")
        before = {k: json.dumps(v, sort_keys=True) for k, v in self.states.items()}
        try:
            response = getattr(self, f"_{domain}")(service, dict(data or {}))
        except Invalid:
            return _text(400, "Bad Request")
        self.calls.append((domain, service, dict(data or {})))
        with self._state:
            changed = [s for k, s in self.states.items() if before.get(k) != json.dumps(s, sort_keys=True)]
        if response_requested:
            return Reply.json(200, {"changed_states": changed, "service_response": response})
        return Reply.json(200, changed)

    # -- the services ----------------------------------------------------------------------------
    def _entities(self, data: dict[str, Any], domain: str) -> list[str]:
        value = data.pop("entity_id", None)
        if value is None:
            raise Invalid("entity_id is required")
        ids = [value] if isinstance(value, str) else value
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise Invalid("entity_id must be an entity id or a list of them")
        if ids == ["all"]:
            return [k for k in self.states if k.startswith(domain + ".")]
        for entity_id in ids:
            if not entity_id.startswith(domain + ".") and "." in entity_id:
                raise Invalid(f"{entity_id} is not a {domain}")
        # unknown entities are skipped (Home Assistant only logs them)
        return [i for i in ids if i in self.states]

    def _light(self, service: str, data: dict[str, Any]) -> None:
        entities = self._entities(data, "light")
        allowed = {"brightness_pct", "brightness", "rgb_color", "color_temp_kelvin", "transition"}
        if service != "turn_on":
            allowed = {"transition"}
        if set(data) - allowed:
            raise Invalid(f"extra keys not allowed: {sorted(set(data) - allowed)}")
        brightness: int | None = None
        if "brightness_pct" in data:
            pct = data["brightness_pct"]
            if not isinstance(pct, int | float) or not 0 <= pct <= 100:
                raise Invalid("brightness_pct must be 0–100")
            brightness = round(255 * pct / 100)
        if "brightness" in data:
            value = data["brightness"]
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise Invalid("brightness must be 0–255")
            brightness = value
        rgb = data.get("rgb_color")
        if rgb is not None and not (isinstance(rgb, list) and len(rgb) == 3 and all(isinstance(c, int) for c in rgb)):
            raise Invalid("rgb_color must be three integers")
        for entity_id in entities:
            current = self.states[entity_id]
            attributes = {k: v for k, v in current["attributes"].items() if k not in ("brightness", "rgb_color")}
            on = {"turn_on": True, "turn_off": False}.get(service, current["state"] != "on")
            if on and brightness == 0:
                on = False
            if on:
                attributes["brightness"] = (
                    brightness if brightness is not None else current["attributes"].get("brightness", 255)
                )
                if rgb is not None:
                    attributes["rgb_color"] = rgb
            if (current["state"] == "on") != on or attributes != current["attributes"]:
                self.set_state(entity_id, "on" if on else "off", **attributes)

    def _switch(self, service: str, data: dict[str, Any]) -> None:
        entities = self._entities(data, "switch")
        if data:
            raise Invalid(f"extra keys not allowed: {sorted(data)}")
        for entity_id in entities:
            current = self.states[entity_id]
            on = {"turn_on": True, "turn_off": False}.get(service, current["state"] != "on")
            if (current["state"] == "on") != on:
                self.set_state(entity_id, "on" if on else "off", **current["attributes"])

    def _notify(self, service: str, data: dict[str, Any]) -> None:
        if not isinstance(data.get("message"), str):
            raise Invalid("required key not provided @ data['message']")
        if set(data) - {"message", "title", "target", "data"}:
            raise Invalid("extra keys not allowed")
        self.notifications.append({"service": service, **data})

    def _weather(self, service: str, data: dict[str, Any]) -> dict[str, Any]:
        entities = self._entities(data, "weather")
        if data.get("type") not in ("daily", "hourly", "twice_daily"):
            raise Invalid("type must be daily, hourly or twice_daily")
        forecast = [{"datetime": "2025-03-10T12:00:00+00:00", "condition": "sunny", "temperature": 19.0}]
        return {entity_id: {"forecast": forecast} for entity_id in entities}
