"""Broker and backend URLs as kombu reads them, refused at configuration naming the part.

Given each URL form Celery's documentation uses, expect kombu's defaults for what
it leaves out; given a URL that cannot work, expect ``Celeriac(...)`` (not the
first send, not a worker's log) to refuse it with a message naming the part.
"""

from __future__ import annotations

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from celeriac.urls import parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # (scheme, host, port, user, password, vhost) as kombu fills them in
        ("amqp://", ("amqp", "localhost", 5672, "guest", "guest", "/")),
        ("amqp://guest@localhost//", ("amqp", "localhost", 5672, "guest", "guest", "/")),
        ("pyamqp://guest@localhost//", ("amqp", "localhost", 5672, "guest", "guest", "/")),
        ("librabbitmq://localhost", ("amqp", "localhost", 5672, "guest", "guest", "/")),
        (
            "amqp://myuser:mypassword@localhost:5672/myvhost",
            ("amqp", "localhost", 5672, "myuser", "mypassword", "myvhost"),
        ),
        (
            "amqp://bob@rabbit.example.com/",
            ("amqp", "rabbit.example.com", 5672, "bob", "guest", "/"),
        ),
        ("amqp://u:p%40ss%2Fw@host/%2F", ("amqp", "host", 5672, "u", "p@ss/w", "/")),
        ("amqps://guest@localhost//", ("amqps", "localhost", 5671, "guest", "guest", "/")),
        ("amqp://[::1]:5673//", ("amqp", "::1", 5673, "guest", "guest", "/")),
        ("redis://", ("redis", "localhost", 6379, None, None, "/")),
        ("redis://localhost:6379/0", ("redis", "localhost", 6379, None, None, "0")),
        ("redis://:password@hostname:6380/1", ("redis", "hostname", 6380, None, "password", "1")),
        ("redis://user:pw@host/2", ("redis", "host", 6379, "user", "pw", "2")),
        (
            "rediss://:pw@host:6380/0?ssl_cert_reqs=required",
            ("rediss", "host", 6380, None, "pw", "0"),
        ),
    ],
)
def test_celery_url_forms_read_with_kombu_defaults(url: str, expected: tuple[object, ...]) -> None:
    parsed = parse_url(url)
    got = (
        parsed.scheme,
        parsed.hostname,
        parsed.port,
        parsed.username,
        parsed.password,
        parsed.virtual_host,
    )
    assert got == expected


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest@localhost//",
        "pyamqp://guest@localhost//",
        "redis://localhost:6379/0",
        "redis://:pw@localhost/1",
        "sqlite:///celeriac.sqlite3",
        "memory://",
        "redis+sentinel://h1:26379,h2:26379/0?master_name=mymaster",
    ],
)
def test_documented_broker_urls_are_accepted(url: str) -> None:
    app = Celeriac("t", broker=url, set_as_current=False)
    assert app.conf.broker_url == url


@pytest.mark.parametrize(
    ("setting", "url", "named"),
    [
        ("broker", "amqp://localhost:567x//", "the port '567x'"),
        ("broker", "amqp://user:pa/ss@localhost//", "URL-quoted"),
        ("broker", "redis://localhost:99999/0", "the port '99999'"),
        ("broker", "redis://localhost/zero", "the database 'zero'"),
        ("broker", "rabbit://localhost", "unknown scheme"),
        ("broker", "amqp://h1//;amqp://h2//", "several URLs"),
        ("broker", "amqp://rabbit host//", "the host 'rabbit host'"),
        ("broker", "localhost:6379", "must be a URL"),
        ("backend", "redis://localhost/one", "the database 'one'"),
        ("backend", "mongodb://localhost", "unknown scheme"),
    ],
)
def test_a_url_that_cannot_work_is_refused_at_configuration(
    setting: str, url: str, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named.replace("(", r"\(")) as info:
        Celeriac("t", set_as_current=False, **{setting: url})
    assert "pa/ss" not in str(info.value)  # no password in the message


def test_conf_update_refuses_too_and_keeps_the_old_value() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="broker_url"):
        app.conf.update(broker_url="redis://host:port/0")
    assert app.conf.broker_url == "memory://"


def test_kombus_sentinel_url_form_is_read() -> None:
    from celeriac.redis.client import parse_url as redis_url

    url = "sentinel://:pw@localhost:26379;sentinel://localhost:26380;sentinel://h3:26381/2"
    target = redis_url(url, {"master_name": "mymaster"})
    assert target.kind == "sentinel" and target.password == "pw" and target.db == 2
    assert target.hosts == (("localhost", 26379), ("localhost", 26380), ("h3", 26381))
    app = Celeriac(
        "t",
        broker=url,
        broker_transport_options={"master_name": "mymaster"},
        set_as_current=False,
    )
    assert app.conf.broker_url == url
