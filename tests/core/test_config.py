"""Settings: Celery's names, namespaces, environment overrides, clear errors."""

from __future__ import annotations

import types

import pytest

from celeriac import Celeriac
from celeriac.config import ConfigWarning
from celeriac.exceptions import ConfigurationError


def test_settings_as_keywords_and_update() -> None:
    app = Celeriac("t", broker="memory://", task_acks_late=False, set_as_current=False)
    assert app.conf.broker_url == "memory://"
    assert app.conf.task_acks_late is False
    app.conf.update(result_expires=60, task_serializer="json")
    assert app.conf.result_expires == 60
    assert app.conf["result_expires"] == 60


def test_unknown_setting_warns_with_the_nearest_name() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    with pytest.warns(ConfigWarning, match="'task_acks_lat'.*did you mean 'task_acks_late'"):
        app.conf.update(task_acks_lat=True)


def test_unnecessary_celery_setting_warns_why() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    with pytest.warns(ConfigWarning, match="not needed by celeriac: queues always take 0-9"):
        app.conf.update(task_queue_max_priority=10)


def test_bad_values_are_configuration_errors() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="0 \\(lowest\\) to 9"):
        app.conf.task_default_priority = 12
    with pytest.raises(ConfigurationError, match="must be a URL"):
        app.conf.broker_url = "localhost:6379"
    with pytest.raises(ConfigurationError, match="N/s, N/m or N/h"):
        app.conf.task_default_rate_limit = "ten a minute"
    with pytest.raises(ConfigurationError, match="at least 1"):
        app.conf.worker_concurrency = 0


def test_config_from_module_object_dict_and_namespace() -> None:
    module = types.ModuleType("celeriacconfig")
    module.broker_url = "memory://a"  # type: ignore[attr-defined]
    module.result_backend = "memory://b"  # type: ignore[attr-defined]
    app = Celeriac("t", set_as_current=False)
    app.config_from_object(module)
    assert (app.conf.broker_url, app.conf.result_backend) == ("memory://a", "memory://b")

    settings = types.SimpleNamespace(
        CELERY_BROKER_URL="memory://django", DEBUG=True, CELERY_TASK_DEFAULT_QUEUE="web"
    )
    app.config_from_object(settings, namespace="CELERY")
    assert app.conf.broker_url == "memory://django"
    assert app.conf.task_default_queue == "web"

    app.config_from_object({"task_default_priority": 7})
    assert app.conf.task_default_priority == 7


def test_config_from_module_path_string() -> None:
    app = Celeriac("t", set_as_current=False)
    app.config_from_object("tests.core.sample_config")
    assert app.conf.broker_url == "memory://from-module"
    app.config_from_object("tests.core.sample_config:Django", namespace="APP")
    assert app.conf.task_default_queue == "from-namespace"


def test_missing_config_module_says_what_to_check() -> None:
    app = Celeriac("t", set_as_current=False)
    with pytest.raises(ConfigurationError, match="sys.path"):
        app.config_from_object("no_such_module_here")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERIAC_BROKER_URL", "memory://env")
    monkeypatch.setenv("CELERIAC_WORKER_PREFETCH_MULTIPLIER", "1")
    app = Celeriac("t", broker="memory://code", set_as_current=False)
    assert app.conf.broker_url == "memory://env"
    assert app.conf.worker_prefetch_multiplier == 1


def test_embedded_broker_when_none_configured() -> None:
    app = Celeriac("t", set_as_current=False)
    assert app.broker_url.startswith("sqlite:///")
    assert app.backend_url == app.broker_url
    assert "embedded" in app.describe()


def test_passwords_never_shown() -> None:
    app = Celeriac("t", broker="redis://:s3cret@host:6379/0", set_as_current=False)
    assert "s3cret" not in app.describe()


def test_unknown_broker_scheme_is_explained() -> None:
    # refused when configured, not at the first send
    with pytest.raises(ConfigurationError, match="unknown scheme.*redis://"):
        Celeriac("t", broker="kafka://localhost", set_as_current=False)
