"""One redaction rule wherever a URL or a setting is shown."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import celeriac.control.commands  # noqa: F401  (registers the commands)
from celeriac import Celeriac
from celeriac.control.registry import COMMANDS
from celeriac.urls import redact, redact_setting
from celeriac.worker.options import resolve_options
from celeriac.worker.runner import banner

SECRET = "s3cr3t-value"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@host:6379/0", "redis://:***@host:6379/0"),
        (f"redis://user:{SECRET}@host/0", "redis://user:***@host/0"),
        (f"redis://host:6379/0?password={SECRET}", "redis://host:6379/0?password=***"),
        (
            f"rediss://host/0?ssl_cert_reqs=none&Password={SECRET}&db=1",
            "rediss://host/0?ssl_cert_reqs=none&Password=***&db=1",
        ),
        (f"amqp://guest:{SECRET}@host:5672//", "amqp://guest:***@host:5672//"),
        (
            f"db+postgresql://u:{SECRET}@h/db?sslpassword={SECRET}",
            "db+postgresql://u:***@h/db?sslpassword=***",
        ),
        (f"sqs://host/?access_token={SECRET}#x", "sqs://host/?access_token=***#x"),
        ("redis://host:6379/0?db=2&socket_timeout=5", "redis://host:6379/0?db=2&socket_timeout=5"),
        ("sqlite:///tasks.sqlite3", "sqlite:///tasks.sqlite3"),
    ],
)
def test_urls_lose_their_userinfo_password_and_secret_parameters(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_settings_named_secret_and_urls_inside_settings_are_hidden() -> None:
    options = {"password": SECRET, "visibility_timeout": 30, "sentinel": {"auth_token": SECRET}}
    shown = redact_setting("broker_transport_options", options)
    assert shown == {"password": "***", "visibility_timeout": 30, "sentinel": {"auth_token": "***"}}
    assert redact_setting("security_key", SECRET) == "***"
    assert redact_setting("security_key", None) is None
    assert redact_setting("result_backend", f"redis://h/1?password={SECRET}").endswith("=***")
    assert redact_setting("some_urls", [f"redis://:{SECRET}@h/0"]) == ["redis://:***@h/0"]
    # names are read word by word: a routing key or a key prefix is no secret
    assert redact_setting("task_default_routing_key", "tasks") == "tasks"
    assert redact_setting("result_key_prefix", "celery-") == "celery-"
    assert redact_setting("aws_secret_access_key", SECRET) == "***"
    assert redact_setting("apiKey", SECRET) == "***"


@pytest.fixture
def app() -> Celeriac:
    return Celeriac(
        "secrets",
        broker=f"redis://127.0.0.1:1/0?password={SECRET}",
        backend=f"redis://:{SECRET}@127.0.0.1:1/1",
        set_as_current=False,
        broker_transport_options={"password": SECRET, "visibility_timeout": 10},
        security_key=SECRET,
        worker_send_task_events=False,
    )


def test_the_worker_banner_and_inspect_conf_show_no_secret(app: Celeriac) -> None:
    shown = banner(app, resolve_options(app, pool="threads", concurrency=1))
    assert SECRET not in shown and "password=***" in shown
    conf = COMMANDS["conf"](SimpleNamespace(app=app))
    assert SECRET not in repr(conf)
    assert conf["broker_transport_options"]["password"] == "***"
    assert conf["broker_url"].endswith("password=***")
    assert SECRET not in app.describe()
