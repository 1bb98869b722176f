"""Connect tables over HTTP (the real app on a real SQLite file): table CRUD and column changes,
rows with typed values and errors naming the field, uniqueness, upserts, lookups, filters, sort
and paging, the configurable limits, permissions, and the changes row writes record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chronary.services import changes
from chronary.store import changes as change_store
from chronary.webhooks import dispatch
from tests.conftest import Api

BASE = "/connect/v1/tables"

ORDERS: dict[str, Any] = {
    "name": "Orders",
    "slug": "orders",
    "description": "Every confirmed booking",
    "columns": [
        {"name": "code", "type": "text"},
        {"name": "amount", "type": "number", "required": True},
        {"name": "paid", "type": "boolean"},
        {"name": "at", "type": "datetime"},
        {"name": "meta", "type": "json"},
        {"name": "email", "type": "text", "unique": True},
    ],
    "keyColumn": "code",
}


def table(api: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = api.post(BASE, json=body or ORDERS)
    assert r.status_code == 201, r.text
    return r.json()


def add(api: Api, values: dict[str, Any], slug: str = "orders") -> dict[str, Any]:
    r = api.post(f"{BASE}/{slug}/rows", json={"values": values})
    assert r.status_code == 201, r.text
    return r.json()


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


# --- tables --------------------------------------------------------------------------------------


def test_table_crud(api: Api) -> None:
    made = table(api)
    assert made["id"].startswith("tbl_") and made["object"] == "table"
    assert (made["slug"], made["name"], made["keyColumn"], made["rowCount"]) == ("orders", "Orders", "code", 0)
    key = made["columns"][0]
    assert key == {"name": "code", "type": "text", "required": True, "unique": True}  # the key: unique + required
    assert made["createdAt"].endswith("Z") and made["updatedAt"] == made["createdAt"]
    assert api.get(f"{BASE}/orders").json() == made
    listed = api.get(BASE).json()
    assert listed["total"] == 1 and listed["data"] == [made]

    changed = api.patch(f"{BASE}/orders", json={"name": "Bookings", "description": None, "slug": "bookings"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["slug"], changed.json()["description"]) == ("Bookings", "bookings", None)
    assert error(api.get(f"{BASE}/orders"), 404)["param"] == "slug"
    assert api.delete(f"{BASE}/bookings").status_code == 204
    assert api.get(BASE).json()["total"] == 0
    assert error(api.delete(f"{BASE}/bookings"), 404)["type"] == "not_found"


def test_the_key_column_defaults_to_the_first_column(api: Api) -> None:
    made = table(api, {"name": "People", "slug": "people", "columns": [{"name": "email", "type": "text"}]})
    assert made["keyColumn"] == "email" and made["columns"][0]["unique"] and made["columns"][0]["required"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"slug": "Orders"}, "slug"),
        ({"slug": "1orders"}, "slug"),
        ({"slug": "a" * 64}, "slug"),
        ({"name": ""}, "name"),
        ({"columns": []}, "columns"),
        ({"columns": [{"name": "x", "type": "money"}]}, "columns[0].type"),
        ({"columns": [{"name": "bad name", "type": "text"}]}, "columns[0].name"),
        ({"columns": [{"name": "a", "type": "text"}, {"name": "A", "type": "number"}]}, "columns[1].name"),
        ({"columns": [{"name": "a", "type": "text"}, {"name": "j", "type": "json", "unique": True}]}, "columns[1].unique"),
        ({"keyColumn": "nope"}, "keyColumn"),
        ({"keyColumn": "meta"}, "keyColumn"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_table_validation_names_the_field(api: Api, change: dict[str, Any], param: str) -> None:
    err = error(api.post(BASE, json={**ORDERS, **change}), 400)
    assert err["param"] == param, err


def test_a_slug_is_unique_in_the_org(api: Api) -> None:
    table(api)
    err = error(api.post(BASE, json=ORDERS), 409)
    assert err["param"] == "slug" and "orders" in err["message"]
    table(api, {**ORDERS, "slug": "orders-2"})
    assert error(api.patch(f"{BASE}/orders-2", json={"slug": "orders"}), 409)["param"] == "slug"


def test_patch_adds_and_drops_columns_and_drops_their_data(api: Api) -> None:
    table(api)
    row = add(api, {"code": "A1", "amount": 5, "meta": {"x": 1}, "email": "a@example.org"})
    r = api.patch(
        f"{BASE}/orders", json={"dropColumns": ["meta", "email"], "addColumns": [{"name": "note", "type": "text"}]}
    )
    assert r.status_code == 200, r.text
    assert [c["name"] for c in r.json()["columns"]] == ["code", "amount", "paid", "at", "note"]
    assert r.json()["updatedAt"] > r.json()["createdAt"]
    assert api.get(f"{BASE}/orders/rows/{row['id']}").json()["values"] == {
        "code": "A1",
        "amount": 5,
        "paid": None,
        "at": None,
        "note": None,
    }
    # the dropped unique column's index is gone too: a re-added email column starts empty
    api.patch(f"{BASE}/orders", json={"addColumns": [{"name": "email", "type": "text", "unique": True}]})
    second = add(api, {"code": "A2", "amount": 1, "email": "a@example.org"})
    assert api.get(f"{BASE}/orders/rows/{row['id']}").json()["values"]["email"] is None
    assert api.get(f"{BASE}/orders/rows/lookup", params={"column": "email", "value": "a@example.org"}).json() == second


def test_patch_changes_required_and_unique_only_when_every_row_satisfies_it(api: Api) -> None:
    table(api)
    first = add(api, {"code": "A1", "amount": 5, "paid": True})
    second = add(api, {"code": "A2", "amount": 5})
    err = error(api.patch(f"{BASE}/orders", json={"updateColumns": [{"name": "paid", "required": True}]}), 409)
    assert err["param"] == "updateColumns[0].required" and "'paid'" in err["message"] and second["id"] in err["message"]
    err = error(api.patch(f"{BASE}/orders", json={"updateColumns": [{"name": "amount", "unique": True}]}), 409)
    assert err["param"] == "updateColumns[0].unique" and "'amount'" in err["message"]
    assert first["id"] in err["message"] and second["id"] in err["message"] and "5" in err["message"]
    err = error(api.patch(f"{BASE}/orders", json={"addColumns": [{"name": "n", "type": "text", "required": True}]}), 409)
    assert err["param"] == "addColumns[0].required" and first["id"] in err["message"]
    # nothing of a refused PATCH sticks
    assert [c["name"] for c in api.get(f"{BASE}/orders").json()["columns"]] == [c["name"] for c in ORDERS["columns"]]

    api.patch(f"{BASE}/orders/rows/{second['id']}", json={"values": {"amount": 6, "paid": False}})
    r = api.patch(
        f"{BASE}/orders", json={"updateColumns": [{"name": "paid", "required": True}, {"name": "amount", "unique": True}]}
    )
    assert r.status_code == 200, r.text
    cols = {c["name"]: c for c in r.json()["columns"]}
    assert cols["paid"]["required"] and cols["amount"]["unique"]
    err = error(api.post(f"{BASE}/orders/rows", json={"values": {"code": "A3", "amount": 6, "paid": True}}), 409)
    assert err["param"] == "values.amount"
    # and back
    r = api.patch(f"{BASE}/orders", json={"updateColumns": [{"name": "amount", "unique": False}]})
    assert r.status_code == 200 and not {c["name"]: c for c in r.json()["columns"]}["amount"]["unique"]
    add(api, {"code": "A3", "amount": 6, "paid": True})


def test_patch_key_column_rules(api: Api) -> None:
    table(api)
    add(api, {"code": "A1", "amount": 5, "email": "a@example.org"})
    add(api, {"code": "A2", "amount": 5})
    err = error(api.patch(f"{BASE}/orders", json={"dropColumns": ["code"]}), 400)
    assert err["param"] == "dropColumns[0]" and "key" in err["message"]
    err = error(api.patch(f"{BASE}/orders", json={"updateColumns": [{"name": "code", "unique": False}]}), 400)
    assert err["param"] == "updateColumns[0].unique"
    assert error(api.patch(f"{BASE}/orders", json={"keyColumn": "email"}), 409)["param"] == "keyColumn"  # A2 has none
    assert error(api.patch(f"{BASE}/orders", json={"keyColumn": "amount"}), 409)["param"] == "keyColumn"  # 5 twice
    assert error(api.patch(f"{BASE}/orders", json={"keyColumn": "meta"}), 400)["param"] == "keyColumn"
    assert error(api.patch(f"{BASE}/orders", json={"dropColumns": ["nope"]}), 400)["param"] == "dropColumns[0]"
    assert error(api.patch(f"{BASE}/orders", json={}), 400)["type"] == "validation_error"
    a2 = api.get(f"{BASE}/orders/rows/lookup", params={"column": "code", "value": "A2"}).json()
    api.patch(f"{BASE}/orders/rows/{a2['id']}", json={"values": {"email": "b@example.org"}})
    r = api.patch(f"{BASE}/orders", json={"keyColumn": "email", "dropColumns": ["code"]})
    assert r.status_code == 200, r.text
    assert r.json()["keyColumn"] == "email" and r.json()["columns"][-1] == {
        "name": "email",
        "type": "text",
        "required": True,
        "unique": True,
    }
    up = api.post(f"{BASE}/orders/rows/upsert", json={"values": {"email": "b@example.org", "amount": 9}}).json()
    assert up["created"] is False and up["row"]["values"]["amount"] == 9


# --- rows ----------------------------------------------------------------------------------------


def test_row_crud_with_typed_values(api: Api) -> None:
    table(api)
    row = add(api, {"code": "A1", "amount": 12.5, "paid": False, "at": "2026-03-02T10:00:00+01:00", "meta": {"tags": ["x"]}})
    assert row["id"].startswith("row_") and row["object"] == "table_row" and row["table"] == "orders"
    assert row["values"] == {
        "code": "A1",
        "amount": 12.5,
        "paid": False,
        "at": "2026-03-02T09:00:00Z",  # UTC
        "meta": {"tags": ["x"]},
        "email": None,
    }
    assert api.get(f"{BASE}/orders/rows/{row['id']}").json() == row
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 1

    r = api.patch(
        f"{BASE}/orders/rows/{row['id']}", json={"values": {"paid": True, "meta": None, "at": "2026-03-02T09:00:00.250Z"}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["values"] == {**row["values"], "paid": True, "meta": None, "at": "2026-03-02T09:00:00.250Z"}
    assert r.json()["updatedAt"] >= row["updatedAt"] and r.json()["createdAt"] == row["createdAt"]
    err = error(api.patch(f"{BASE}/orders/rows/{row['id']}", json={"values": {"amount": None}}), 400)
    assert (err["param"], err["message"]) == ("values.amount", "values.amount: a value is required")

    assert api.delete(f"{BASE}/orders/rows/{row['id']}").status_code == 204
    assert error(api.get(f"{BASE}/orders/rows/{row['id']}"), 404)["param"] == "rowId"
    assert error(api.get(f"{BASE}/orders/rows/evt_123"), 404)["type"] == "not_found"
    assert error(api.get(f"{BASE}/nope/rows"), 404)["param"] == "slug"
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 0


@pytest.mark.parametrize(
    ("values", "param", "message"),
    [
        ({"code": 5, "amount": 1}, "values.code", "values.code: expected a string"),
        ({"code": "A", "amount": "12"}, "values.amount", "values.amount: expected a number"),
        ({"code": "A", "amount": True}, "values.amount", "values.amount: expected a number"),
        ({"code": "A", "amount": 2**64}, "values.amount", "values.amount: the number is too large (integers are 64-bit)"),
        ({"code": "A", "amount": 1, "paid": "yes"}, "values.paid", "values.paid: expected true or false"),
        ({"code": "A", "amount": 1, "at": "tomorrow"}, "values.at", None),
        ({"code": "A", "amount": 1, "at": "2026-03-02T10:00:00"}, "values.at", None),  # no offset
        ({"code": "A", "amount": 1, "colour": "red"}, "values.colour", None),
        ({"code": "A"}, "values.amount", "values.amount: a value is required"),
        ({"amount": 1}, "values.code", "values.code: a value is required"),
    ],
)
def test_every_value_error_names_the_column(api: Api, values: dict[str, Any], param: str, message: str | None) -> None:
    table(api)
    err = error(api.post(f"{BASE}/orders/rows", json={"values": values}), 400)
    assert err["param"] == param, err
    assert err["message"].startswith(f"{param}: ")
    if message:
        assert err["message"] == message
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 0


def test_a_row_too_big_answers_413(api: Api) -> None:
    table(api)
    err = error(api.post(f"{BASE}/orders/rows", json={"values": {"code": "A", "amount": 1, "meta": "x" * 70_000}}), 413)
    assert err["param"] == "values"


def test_unique_violations_answer_409_naming_column_and_value(api: Api) -> None:
    table(api)
    first = add(api, {"code": "A1", "amount": 1, "email": "ada@example.org"})
    err = error(api.post(f"{BASE}/orders/rows", json={"values": {"code": "A1", "amount": 2}}), 409)
    assert err["param"] == "values.code" and "'A1'" in err["message"] and first["id"] in err["message"]
    other = add(api, {"code": "A2", "amount": 2})
    err = error(api.patch(f"{BASE}/orders/rows/{other['id']}", json={"values": {"email": "ada@example.org"}}), 409)
    assert err["param"] == "values.email" and "ada@example.org" in err["message"]
    # a row keeps its own unique values when it changes others
    assert api.patch(f"{BASE}/orders/rows/{first['id']}", json={"values": {"amount": 3}}).status_code == 200
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 2


def test_upsert_by_the_key_and_by_another_unique_column(api: Api) -> None:
    table(api)
    r = api.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "A1", "amount": 1, "email": "ada@example.org"}})
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["created"] is True and made["row"]["values"]["amount"] == 1
    again = api.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "A1", "amount": 2}}).json()
    assert again["created"] is False and again["row"]["id"] == made["row"]["id"]
    assert again["row"]["values"]["amount"] == 2 and again["row"]["values"]["email"] == "ada@example.org"  # kept
    by_email = api.post(
        f"{BASE}/orders/rows/upsert", json={"column": "email", "values": {"email": "ada@example.org", "paid": True}}
    ).json()
    assert by_email["created"] is False and by_email["row"]["id"] == made["row"]["id"]
    assert by_email["row"]["values"] == {**again["row"]["values"], "paid": True}
    fresh = api.post(
        f"{BASE}/orders/rows/upsert",
        json={"column": "email", "values": {"email": "bob@example.org", "code": "B1", "amount": 3}},
    ).json()
    assert fresh["created"] is True and fresh["row"]["id"] != made["row"]["id"]
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 2

    err = error(api.post(f"{BASE}/orders/rows/upsert", json={"column": "amount", "values": {"amount": 3}}), 400)
    assert err["param"] == "column" and "unique" in err["message"]
    err = error(api.post(f"{BASE}/orders/rows/upsert", json={"column": "nope", "values": {"amount": 3}}), 400)
    assert err["param"] == "column"
    err = error(api.post(f"{BASE}/orders/rows/upsert", json={"values": {"amount": 3}}), 400)
    assert err["param"] == "values.code"
    err = error(api.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "C1"}}), 400)  # a new row needs amount
    assert err["param"] == "values.amount"
    # changing another unique column to a value someone else holds
    err = error(api.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "B1", "email": "ada@example.org"}}), 409)
    assert err["param"] == "values.email"


def test_lookup_by_a_column(api: Api) -> None:
    table(api)
    a = add(api, {"code": "A1", "amount": 10, "paid": True, "at": "2026-03-02T09:00:00Z"})
    add(api, {"code": "A2", "amount": 10})

    def lookup(column: str, value: str) -> Any:
        return api.get(f"{BASE}/orders/rows/lookup", params={"column": column, "value": value})

    assert lookup("code", "A1").json() == a
    assert lookup("amount", "10").json()["id"] == a["id"]  # the oldest of two
    assert lookup("amount", "10.0").json()["id"] == a["id"]
    assert lookup("paid", "yes").json()["id"] == a["id"]
    assert lookup("at", "2026-03-02T10:00:00+01:00").json()["id"] == a["id"]
    err = error(lookup("code", "Z9"), 404)
    assert err["param"] == "value" and "Z9" in err["message"]
    assert error(lookup("amount", "ten"), 400)["param"] == "value"
    assert error(lookup("meta", "{}"), 400)["param"] == "value"
    assert error(lookup("nope", "1"), 400)["param"] == "column"
    assert error(api.get(f"{BASE}/orders/rows/lookup", params={"value": "1"}), 400)["param"] == "column"


def test_filters_sort_and_paging(api: Api) -> None:
    table(api)
    for i in range(30):
        values: dict[str, Any] = {"code": f"C{i:02d}", "amount": i % 7, "paid": i % 2 == 0}
        if i % 5:
            values["at"] = f"2026-03-{1 + i % 28:02d}T12:00:00Z"
        add(api, values)

    def rows(**params: Any) -> dict[str, Any]:
        r = api.get(f"{BASE}/orders/rows", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    everything = rows(limit=200)
    assert everything["total"] == 30 and [r["values"]["code"] for r in everything["data"]] == [
        f"C{i:02d}" for i in range(30)
    ]
    paid = rows(**{"filter[paid]": "true"})
    assert paid["total"] == 15 and all(r["values"]["paid"] for r in paid["data"])
    both = rows(**{"filter[paid]": "true", "filter[amount]": "3"})
    assert sorted(r["values"]["code"] for r in both["data"]) == ["C10", "C24"]
    assert rows(**{"filter[code]": "C07"})["data"][0]["values"]["amount"] == 0
    assert rows(**{"filter[at]": "2026-03-02T13:00:00+01:00"})["total"] == 2  # C01, C29
    desc = rows(sort="-amount", limit=5)
    assert [r["values"]["amount"] for r in desc["data"]] == [6, 6, 6, 6, 5]
    assert [r["values"]["code"] for r in desc["data"][:4]] == ["C27", "C20", "C13", "C06"]  # reversed: ties newest first
    asc = rows(sort="amount", limit=5)
    assert [r["values"]["code"] for r in asc["data"]] == ["C00", "C07", "C14", "C21", "C28"]
    filtered = rows(**{"filter[paid]": "true"}, sort="-amount", limit=3)  # the filtered path sorts the same way
    assert [r["values"]["code"] for r in filtered["data"]] == ["C20", "C06", "C26"]
    assert filtered["total"] == 15
    by_time = rows(sort="at", limit=200)["data"]
    stamps = [r["values"]["at"] for r in by_time]
    assert stamps[:24] == sorted(stamps[:24]) and stamps[24:] == [None] * 6  # no value: last
    newest_first = rows(sort="-at", limit=200)["data"]
    assert [r["values"]["at"] for r in newest_first][24:] == [None] * 6
    assert [r["values"]["code"] for r in newest_first][24:] == ["C00", "C05", "C10", "C15", "C20", "C25"]
    assert [r["values"]["code"] for r in rows(sort="-at", limit=4, offset=22)["data"]] == [
        *[r["values"]["code"] for r in newest_first[22:24]],
        "C00",
        "C05",
    ]  # a page across both parts
    no_time = rows(**{"filter[paid]": "true"}, sort="at", limit=200)["data"]
    assert [r["values"]["code"] for r in no_time if r["values"]["at"] is None] == ["C00", "C10", "C20"]
    page = rows(sort="code", limit=7, offset=14)
    assert page["total"] == 30 and [r["values"]["code"] for r in page["data"]] == [f"C{i:02d}" for i in range(14, 21)]
    assert (page["limit"], page["offset"]) == (7, 14)
    assert rows(**{"filter[paid]": "false"}, sort="-code", limit=2)["data"][0]["values"]["code"] == "C29"

    assert error(api.get(f"{BASE}/orders/rows", params={"filter[nope]": "1"}), 400)["param"] == "filter[nope]"
    assert error(api.get(f"{BASE}/orders/rows", params={"filter[amount]": "many"}), 400)["param"] == "filter[amount]"
    assert error(api.get(f"{BASE}/orders/rows", params={"filter[meta]": "{}"}), 400)["param"] == "filter[meta]"
    assert error(api.get(f"{BASE}/orders/rows", params={"filter": "x"}), 400)["param"] == "filter"
    assert error(api.get(f"{BASE}/orders/rows", params={"sort": "nope"}), 400)["param"] == "sort"
    assert error(api.get(f"{BASE}/orders/rows", params={"sort": "-meta"}), 400)["param"] == "sort"
    assert error(api.get(f"{BASE}/orders/rows", params={"limit": 500}), 400)["param"] == "limit"


# --- limits and permissions ----------------------------------------------------------------------


def test_the_table_and_row_limits_answer_429(make_api: Any) -> None:
    api = make_api(max_tables=2, max_rows_per_table=3)
    table(api)
    table(api, {**ORDERS, "slug": "two"})
    r = api.post(BASE, json={**ORDERS, "slug": "three"})
    err = error(r, 429)
    assert err["type"] == "rate_limited" and "max_tables" in err["message"] and "2" in err["message"]
    assert "retry-after" not in r.headers  # waiting does not help
    for i in range(3):
        add(api, {"code": f"A{i}", "amount": i})
    r = api.post(f"{BASE}/orders/rows", json={"values": {"code": "A3", "amount": 3}})
    err = error(r, 429)
    assert err["type"] == "rate_limited" and "max_rows_per_table" in err["message"]
    assert error(api.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "A9", "amount": 1}}), 429)
    # updating at the limit is fine
    assert api.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "A0", "amount": 9}}).json()["created"] is False
    r = api.post(f"{BASE}/two/import", json={"rows": [{"code": f"B{i}", "amount": i} for i in range(4)]})
    assert error(r, 429)["type"] == "rate_limited"
    assert api.get(f"{BASE}/two").json()["rowCount"] == 0  # nothing half-imported
    assert api.delete(f"{BASE}/two").status_code == 204
    table(api, {**ORDERS, "slug": "three"})


def test_permissions_name_the_missing_one(api: Api) -> None:
    table(api)
    row = add(api, {"code": "A1", "amount": 1})
    viewer = api.as_key(api.post("/v1/keys", json={"name": "viewer", "permissions": ["tables.view"]}).json()["secret"])
    assert viewer.get(BASE).status_code == 200
    assert viewer.get(f"{BASE}/orders/rows/{row['id']}").status_code == 200
    assert viewer.get(f"{BASE}/orders/rows/lookup", params={"column": "code", "value": "A1"}).status_code == 200
    assert viewer.get(f"{BASE}/orders/export").status_code == 200
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", BASE, {**ORDERS, "slug": "x"}),
        ("PATCH", f"{BASE}/orders", {"name": "x"}),
        ("DELETE", f"{BASE}/orders", None),
        ("POST", f"{BASE}/orders/rows", {"values": {"code": "A2", "amount": 1}}),
        ("POST", f"{BASE}/orders/rows/upsert", {"values": {"code": "A2", "amount": 1}}),
        ("PATCH", f"{BASE}/orders/rows/{row['id']}", {"values": {"amount": 2}}),
        ("DELETE", f"{BASE}/orders/rows/{row['id']}", None),
        ("POST", f"{BASE}/orders/import", {"rows": []}),
    ]
    for method, url, body in writes:
        err = error(viewer.request(method, url, json=body), 403)
        assert "tables.write" in err["message"], (method, url)
    nobody = api.as_key(api.post("/v1/keys", json={"name": "other", "permissions": ["flows.view"]}).json()["secret"])
    for url in (BASE, f"{BASE}/orders", f"{BASE}/orders/rows", f"{BASE}/orders/rows/{row['id']}", f"{BASE}/orders/export"):
        assert "tables.view" in error(nobody.get(url), 403)["message"], url
    agent = api.agent()
    as_agent = api.as_key(api.agent_key(agent["id"]))  # agent keys hold no permission unless granted
    assert "tables.view" in error(as_agent.get(BASE), 403)["message"]
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 1


# --- changes -------------------------------------------------------------------------------------


def test_row_writes_record_changes_that_webhooks_deliver(api: Api) -> None:
    hook = api.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["table.row_created", "table.row_updated", "table.row_deleted"]},
    )
    assert hook.status_code == 201, hook.text
    table(api)
    row = add(api, {"code": "A1", "amount": 1})
    api.patch(f"{BASE}/orders/rows/{row['id']}", json={"values": {"amount": 2, "paid": True}})
    api.patch(f"{BASE}/orders/rows/{row['id']}", json={"values": {"amount": 2}})  # no change: nothing recorded
    api.post(f"{BASE}/orders/import", json={"rows": [{"code": "B1", "amount": 1}, {"code": "B2", "amount": 2}]})
    api.delete(f"{BASE}/orders/rows/{row['id']}")
    log = list(reversed(api.runtime.db.read_sync(lambda tx: change_store.recent(tx.conn, 50))))
    table_changes = [c for c in log if c["type"].startswith("table.")]
    assert [c["type"] for c in table_changes] == [
        "table.row_created",
        "table.row_updated",
        "table.row_created",
        "table.row_created",
        "table.row_deleted",
    ]
    payloads = [json.loads(c["payload"]) for c in table_changes]
    created = payloads[0]["data"]["object"]
    assert created == {
        "id": row["id"],
        "object": "table_row",
        "table": "orders",
        "values": row["values"],
        "created_at": row["createdAt"],
        "updated_at": row["updatedAt"],
    }
    updated = payloads[1]["data"]
    assert updated["object"]["values"]["amount"] == 2 and updated["previous"] == {"values": {"amount": 1, "paid": None}}
    assert payloads[4]["data"]["object"]["values"]["amount"] == 2
    assert all(c["resource_id"].startswith("row_") for c in table_changes)

    api.runtime.db.write_sync(lambda tx: changes.consume_batch(tx, dispatch.CONSUMER, dispatch.fan_out))
    deliveries = api.get(f"/v1/webhooks/{hook.json()['id']}/deliveries").json()["data"]
    assert sorted(d["event_type"] for d in deliveries) == sorted(c["type"] for c in table_changes)


def test_delete_where_and_the_service_functions_flows_call(api: Api) -> None:
    from chronary.services import tables
    from chronary.services.context import Principal

    table(api)
    runtime = api.runtime
    org = Principal(org_id=runtime.org_id, key_id="key_test")
    row = runtime.db.write_sync(
        lambda tx: tables.insert_row(tx, org, "orders", {"code": "F1", "amount": "4", "paid": "yes"}, lenient=True)
    )
    assert (
        row["values"]["amount"] == 4
        and row["values"]["paid"] is True
        and set(row)
        == {
            "id",
            "object",
            "table",
            "values",
            "createdAt",
            "updatedAt",
        }
    )
    up, created = runtime.db.write_sync(lambda tx: tables.upsert_row(tx, org, "orders", {"code": "F1", "amount": 5}))
    assert (up["id"], up["values"]["amount"], created) == (row["id"], 5, False)
    runtime.db.write_sync(lambda tx: tables.insert_row(tx, org, "orders", {"code": "F2", "amount": 5}))
    runtime.db.write_sync(lambda tx: tables.insert_row(tx, org, "orders", {"code": "F3", "amount": 6}))
    assert runtime.db.read_sync(lambda tx: tables.lookup_row(tx, org, "orders", "code", "F2"))["values"]["amount"] == 5
    assert runtime.db.read_sync(lambda tx: tables.lookup_row(tx, org, "orders", "amount", 6))["values"]["code"] == "F3"
    assert runtime.db.read_sync(lambda tx: tables.lookup_row(tx, org, "orders", "code", "nope")) is None
    assert runtime.db.write_sync(lambda tx: tables.delete_where(tx, org, "orders", "amount", 5)) == 2
    assert runtime.db.write_sync(lambda tx: tables.delete_where(tx, org, "orders", "amount", 5)) == 0
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 1
    reader = Principal(org_id=runtime.org_id, key_id="key_test", permissions=frozenset({"tables.view"}))
    with pytest.raises(Exception, match="tables.write"):
        runtime.db.write_sync(lambda tx: tables.insert_row(tx, reader, "orders", {"code": "F9", "amount": 1}))
    f3 = runtime.db.read_sync(lambda tx: tables.lookup_row(tx, reader, "orders", "code", "F3"))
    runtime.db.write_sync(lambda tx: tables.delete_row(tx, org, "orders", f3["id"]))
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 0
