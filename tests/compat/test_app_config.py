"""App-level Celery calls: ``config_from_envvar``, settings as constructor keywords,
``app.on_after_configure`` / ``on_after_finalize`` sent once each, in order."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError


@pytest.fixture
def config_module() -> Iterator[str]:
    module = types.ModuleType("compat_celeryconfig")
    module.broker_url = "memory://"  # type: ignore[attr-defined]
    module.task_default_queue = "from-envvar"  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


def test_config_from_envvar(config_module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Celeriac("t", set_as_current=False, task_acks_late=False)  # keywords are settings
    monkeypatch.setenv("CELERY_CONFIG_MODULE", config_module)
    assert app.config_from_envvar("CELERY_CONFIG_MODULE") is True
    assert app.conf.task_default_queue == "from-envvar" and app.conf.task_acks_late is False
    monkeypatch.delenv("CELERY_CONFIG_MODULE")
    assert app.config_from_envvar("CELERY_CONFIG_MODULE", silent=True) is False
    with pytest.raises(ConfigurationError, match="CELERY_CONFIG_MODULE is not set"):
        app.config_from_envvar("CELERY_CONFIG_MODULE")


def test_app_signals_are_sent_once_in_order_after_the_imports() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    calls: list[tuple[str, object, object]] = []

    @app.on_after_configure.connect
    def configured(sender: Celeriac, **kwargs: object) -> None:
        calls.append(("configure", sender, kwargs.get("source")))

    @app.on_after_finalize.connect
    def finalized(sender: Celeriac, **kwargs: object) -> None:
        calls.append(("finalize", sender, None))

    assert calls == []  # nothing at connect time: the task modules are not imported yet
    app.import_modules()  # what a worker, beat and every command do first
    app.finalize()
    assert calls == [("configure", app, app.conf), ("finalize", app, None)]


@pytest.mark.parametrize(("given", "stored"), [("rpc", "rpc://"), ("django-db", "django-db://")])
def test_backend_aliases_without_a_url(given: str, stored: str) -> None:
    app = Celeriac("t", broker="amqp://", backend=given, set_as_current=False)
    assert app.conf.result_backend == stored


def test_get_task_logger_records_carry_the_task(caplog: pytest.LogCaptureFixture) -> None:
    from celeriac.utils.log import get_task_logger

    logger = get_task_logger("proj.tasks")
    app = Celeriac("t", broker="memory://", set_as_current=False, task_always_eager=True)

    @app.task
    def shout() -> None:
        logger.warning("inside")

    with caplog.at_level("WARNING", logger="proj.tasks"):
        result = shout.delay()
        logger.warning("outside")
    inside, outside = caplog.records
    assert (inside.task_id, inside.task_name) == (result.id, shout.name)  # type: ignore[attr-defined]
    assert (outside.task_id, outside.task_name) == ("???", "???")  # type: ignore[attr-defined]
