"""The README's promises that can drift: CI runs its test command, and it documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

from chronary.config import describe

ROOT = Path(__file__).resolve().parents[2]


def _sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = _sh_blocks(setup)
    assert len(blocks) == 2, "the Set up section has exactly two commands"
    serve_cmd, test_cmd = blocks
    assert "chronary serve" in serve_cmd and "pytest" in test_cmd
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_cmd in ci_lines


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for _option, env, _default, _help in describe():
        assert f"`{env}`" in readme, env
