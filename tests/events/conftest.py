"""An app on a fresh in-process memory broker per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac.events import dispatcher_for


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://events-{uuid.uuid4().hex}"
    app = Celeriac("events-test", broker=url, backend=url, set_as_current=False)
    yield app
    dispatcher_for(app).close()
