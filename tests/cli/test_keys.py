"""`chronary keys create|list|revoke` against the data dir of a running server."""

from __future__ import annotations

from pathlib import Path

from tests.cli.serveproc import KEY_RE, run_cli


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_keys_create_list_revoke_over_http(serve, data_dir: Path) -> None:
    server = serve()
    org_key = server.first_key()
    assert org_key
    d = ["--data-dir", str(data_dir)]

    made = run_cli("keys", "create", "--name", "ops laptop", *d)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("chr_sk_") and len(_lines(made.stdout)) == 1  # stdout: the secret only
    assert "ops laptop" in made.stderr

    with server.client(secret) as c:
        assert c.get("/v1/agents").status_code == 200
        ada = c.post("/v1/agents", json={"name": "Ada"}).json()
        bob = c.post("/v1/agents", json={"name": "Bob"}).json()

    agent = run_cli("keys", "create", "--agent", ada["id"], "--name", "ada bot", *d)
    assert agent.returncode == 0, agent.stderr
    agent_secret = agent.stdout.strip()
    assert agent_secret.startswith("chr_ak_")
    with server.client(agent_secret) as c:
        assert c.get(f"/v1/agents/{ada['id']}").status_code == 200
        assert c.get(f"/v1/agents/{bob['id']}").status_code == 404  # other agents don't exist for it
        assert c.get("/v1/keys").status_code == 403

    listed = run_cli("keys", "list", *d)
    assert listed.returncode == 0, listed.stderr
    rows = _lines(listed.stdout)
    assert len(rows) == 3  # first org key, ops laptop, ada bot
    for s in (org_key, secret, agent_secret):
        assert s not in listed.stdout
        assert any(f"{s[:7]}…{s[-4:]}" in row for row in rows)
    ops_row = next(row for row in rows if "ops laptop" in row)
    ops_id = ops_row.split()[0]
    assert ops_id.startswith("key_")
    ada_row = next(row for row in rows if "ada bot" in row)
    assert ada["id"] in ada_row

    revoked = run_cli("keys", "revoke", ops_id, *d)
    assert revoked.returncode == 0, revoked.stderr
    with server.client(secret) as c:
        r = c.get("/v1/agents")
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "unauthorized"
    with server.client(org_key) as c:  # the others still work
        assert c.get("/v1/agents").status_code == 200
    assert len(_lines(run_cli("keys", "list", *d).stdout)) == 2


def test_keys_errors_are_clear(data_dir: Path) -> None:
    d = ["--data-dir", str(data_dir)]
    again = run_cli("keys", "revoke", "key_doesnotexist", *d)
    assert again.returncode != 0
    assert "key_doesnotexist" in again.stderr and "Traceback" not in again.stderr

    bad_agent = run_cli("keys", "create", "--agent", "agt_nobody", *d)
    assert bad_agent.returncode != 0
    assert "agt_nobody" in bad_agent.stderr and "Traceback" not in bad_agent.stderr
    assert bad_agent.stdout.strip() == ""


def test_keys_command_on_a_fresh_data_dir_shows_the_first_key_once(serve, data_dir: Path) -> None:
    listed = run_cli("keys", "list", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    first = KEY_RE.findall(listed.stderr)
    assert len(first) == 1 and first[0] not in listed.stdout
    assert not KEY_RE.search(run_cli("keys", "list", "--data-dir", str(data_dir)).stderr)
    server = serve()
    assert not KEY_RE.search(server.output)  # already shown once
    with server.client(first[0]) as c:
        assert c.get("/v1/agents").status_code == 200
