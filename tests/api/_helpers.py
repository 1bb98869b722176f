"""Assertions shared by the API tests: the one error envelope, checked the same way everywhere."""

from __future__ import annotations

from typing import Any

import httpx

_UNSET: Any = object()


def assert_error(r: httpx.Response, status: int, type_: str, param: Any = _UNSET) -> dict[str, Any]:
    """The response is `status` with the documented envelope; `param` checked when given."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"type", "message", "param", "request_id"}, err
    assert err["type"] == type_, err
    assert isinstance(err["message"], str) and err["message"], err
    assert err["request_id"].startswith("req_"), err
    assert r.headers["x-request-id"] == err["request_id"]
    assert "Traceback" not in r.text
    if param is not _UNSET:
        assert err["param"] == param, err
    return err


def iso_window() -> tuple[str, str]:
    return "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"
