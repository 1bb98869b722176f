"""Connect table imports (JSON and CSV, all-or-nothing and skip) and streamed exports that
import again unchanged."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api
from tests.tables.test_tables_api import BASE, ORDERS, add, error, table


def rows_of(api: Api, slug: str = "orders") -> list[dict[str, Any]]:
    return [r["values"] for r in api.get(f"{BASE}/{slug}/rows", params={"limit": 200}).json()["data"]]


def test_a_json_import_with_bad_rows_writes_nothing_and_lists_every_bad_row(api: Api) -> None:
    table(api)
    add(api, {"code": "OLD", "amount": 1, "email": "old@example.org"})
    body = {
        "rows": [
            {"code": "A1", "amount": 1, "at": "2026-03-02T10:00:00+01:00"},
            {"code": "A2", "amount": "lots"},  # 1: type
            {"code": "A3"},  # 2: required
            {"code": "A4", "amount": 1, "colour": "red"},  # 3: unknown column
            {"code": "A1", "amount": 2},  # 4: the key again (within the import)
            {"code": "A6", "amount": 2, "email": "old@example.org"},  # 5: held by a row of the table
            {"code": "OLD", "amount": 2},  # 6: the key of a row of the table
            {"code": "A8", "amount": 3, "paid": "yes"},  # 7: JSON takes JSON booleans
        ]
    }
    r = api.post(f"{BASE}/orders/import", json=body)
    err = error(r, 400)
    assert err["type"] == "validation_error" and err["param"] == "rows[1].amount"
    assert "7 of 8 rows are bad, nothing was imported" in err["message"]
    assert err["error_count"] == 7
    listed = [(e["row"], e["column"], e["param"]) for e in err["errors"]]
    assert listed == [
        (1, "amount", "rows[1].amount"),
        (2, "amount", "rows[2].amount"),
        (3, "colour", "rows[3].colour"),
        (4, "code", "rows[4].code"),
        (5, "email", "rows[5].email"),
        (6, "code", "rows[6].code"),
        (7, "paid", "rows[7].paid"),
    ]
    messages = {e["row"]: e["message"] for e in err["errors"]}
    assert messages[1] == "rows[1].amount: expected a number"
    assert messages[2] == "rows[2].amount: a value is required"
    assert "rows[0]" in messages[4] and "'OLD'" in messages[6]
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 1 and len(rows_of(api)) == 1

    r = api.post(f"{BASE}/orders/import", json={**body, "mode": "skip"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["imported"], result["skipped"]) == (1, 7)
    assert [e["param"] for e in result["errors"]] == [p for _, _, p in listed]
    assert [v["code"] for v in rows_of(api)] == ["OLD", "A1"]
    assert rows_of(api)[1]["at"] == "2026-03-02T09:00:00Z"
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 2


def test_a_csv_import_parses_cells_per_column_type(api: Api) -> None:
    table(api)
    text = (
        "code,amount,paid,at,meta,email\r\n"
        'A1,12.5,yes,2026-03-02T10:00:00+01:00,"{""tags"": [1]}",a@example.org\r\n'
        "A2,3,0,,,\r\n"
        "\r\n"  # blank lines are skipped
        "A3,-4,TRUE,,[],\r\n"
        '"A,4",1e3,no,,"""quoted""",\r\n'
    )
    r = api.post(f"{BASE}/orders/import", json={"csv": text})
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 4, "skipped": 0, "errors": []}
    got = rows_of(api)
    assert got[0] == {
        "code": "A1",
        "amount": 12.5,
        "paid": True,
        "at": "2026-03-02T09:00:00Z",
        "meta": {"tags": [1]},
        "email": "a@example.org",
    }
    assert got[1] == {"code": "A2", "amount": 3, "paid": False, "at": None, "meta": None, "email": None}
    assert (got[2]["amount"], got[2]["paid"], got[2]["meta"]) == (-4, True, [])
    assert (got[3]["code"], got[3]["amount"], got[3]["paid"], got[3]["meta"]) == ("A,4", 1000.0, False, "quoted")


def test_a_csv_import_with_bad_rows_in_both_modes(api: Api) -> None:
    table(api)
    text = "code,amount,paid\nB1,1,true\nB2,one,true\nB3,2,maybe\nB4,3\nB1,4,false\nB6,5,no\n"
    err = error(api.post(f"{BASE}/orders/import", json={"csv": text}), 400)
    found = [(e["param"], e["line"]) for e in err["errors"]]
    assert found == [("rows[1].amount", 3), ("rows[2].paid", 4), ("rows[3]", 5), ("rows[4].code", 6)]
    assert err["errors"][2]["column"] is None and "2 fields" in err["errors"][2]["message"]
    assert api.get(f"{BASE}/orders").json()["rowCount"] == 0

    r = api.post(f"{BASE}/orders/import", json={"csv": text, "mode": "skip"})
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], r.json()["skipped"]) == (2, 4)
    assert [v["code"] for v in rows_of(api)] == ["B1", "B6"]

    err = error(api.post(f"{BASE}/orders/import", json={"csv": "code,amount,colour\nC1,1,red\n"}), 400)
    assert err["param"] == "csv" and "colour" in err["message"]
    err = error(api.post(f"{BASE}/orders/import", json={"csv": "code,code\nC1,C1\n"}), 400)
    assert err["param"] == "csv" and "twice" in err["message"]
    assert error(api.post(f"{BASE}/orders/import", json={"csv": "code\n", "rows": []}), 400)["param"] == "rows"
    assert error(api.post(f"{BASE}/orders/import", json={}), 400)["param"] == "rows"
    assert error(api.post(f"{BASE}/orders/import", json={"rows": [], "mode": "maybe"}), 400)["param"] == "mode"
    assert api.post(f"{BASE}/orders/import", json={"csv": ""}).json() == {"imported": 0, "skipped": 0, "errors": []}


TRICKY = [
    {"code": "A1", "amount": 12.5, "paid": True, "at": "2026-03-02T09:00:00Z", "meta": {"tags": ["a", "b"]}, "email": "x@y"},
    {"code": "A,2", "amount": -3, "paid": False, "at": "2026-03-02T09:00:00.250Z", "meta": [1, 2], "email": None},
    {"code": 'quote " and\nnewline', "amount": 0.1, "paid": None, "at": None, "meta": "text", "email": None},
    {"code": "ünïcödé ✓", "amount": 10**15, "paid": None, "at": None, "meta": None, "email": "ü@example.org"},
    {"code": "A5", "amount": 1e-7, "paid": None, "at": None, "meta": {"nested": {"deep": [None, True]}}, "email": None},
]


def test_csv_and_json_exports_import_again_unchanged(api: Api) -> None:
    table(api)
    r = api.post(f"{BASE}/orders/import", json={"rows": TRICKY})
    assert r.status_code == 200 and r.json()["imported"] == len(TRICKY), r.text
    assert rows_of(api) == TRICKY

    csv_export = api.get(f"{BASE}/orders/export", params={"format": "csv"})
    assert csv_export.status_code == 200
    assert csv_export.headers["content-type"].startswith("text/csv")
    assert csv_export.headers["content-disposition"] == 'attachment; filename="orders.csv"'
    assert csv_export.text.splitlines()[0] == "code,amount,paid,at,meta,email"
    table(api, {**ORDERS, "slug": "from-csv"})
    r = api.post(f"{BASE}/from-csv/import", json={"csv": csv_export.text})
    assert r.status_code == 200 and r.json()["imported"] == len(TRICKY), r.text
    assert rows_of(api, "from-csv") == TRICKY

    json_export = api.get(f"{BASE}/orders/export", params={"format": "json"})
    assert json_export.status_code == 200 and json_export.headers["content-type"].startswith("application/json")
    assert json_export.json() == TRICKY
    table(api, {**ORDERS, "slug": "from-json"})
    r = api.post(f"{BASE}/from-json/import", json={"rows": json_export.json()})
    assert r.status_code == 200 and r.json()["imported"] == len(TRICKY), r.text
    assert rows_of(api, "from-json") == TRICKY
    assert api.get(f"{BASE}/from-json/export", params={"format": "csv"}).text == csv_export.text


def test_exports_stream_many_rows_in_creation_order(api: Api) -> None:
    table(api)
    rows = [{"code": f"R{i:05d}", "amount": i} for i in range(2500)]  # more than one read chunk
    assert api.post(f"{BASE}/orders/import", json={"rows": rows}).json()["imported"] == 2500
    lines = api.get(f"{BASE}/orders/export").text.splitlines()
    assert len(lines) == 2501 and lines[1] == "R00000,0,,,," and lines[-1] == "R02499,2499,,,,"
    got = json.loads(api.get(f"{BASE}/orders/export", params={"format": "json"}).text)
    assert [r["code"] for r in got] == [r["code"] for r in rows]
    empty = table(api, {**ORDERS, "slug": "empty"})
    assert api.get(f"{BASE}/{empty['slug']}/export", params={"format": "json"}).json() == []
    assert api.get(f"{BASE}/{empty['slug']}/export").text == "code,amount,paid,at,meta,email\r\n"
    assert error(api.get(f"{BASE}/orders/export", params={"format": "xml"}), 400)["param"] == "format"
    assert error(api.get(f"{BASE}/nope/export"), 404)["param"] == "slug"
