"""A module-wide app for the many small validation cases: building an app costs ~0.2–1 s, and
cases that only read or are rejected do not need a fresh database each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from chronary.app import create_app
from chronary.config import Settings
from tests.conftest import Api


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    app = create_app(Settings(data_dir=data_dir, workers=False))
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        yield Api(client, app.state.runtime.first_key)
