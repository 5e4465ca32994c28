"""The exception tree: what users see of a ``Retry``, and the fields it carries."""

from __future__ import annotations

from datetime import datetime, timezone

from celeriac.exceptions import Retry


def test_a_retry_says_its_own_message_else_its_delay() -> None:
    assert str(Retry("custom message")) == "custom message"
    assert str(Retry("custom message", when=5)) == "custom message"
    assert str(Retry(when=5)) == "Retry in 5s"
    assert str(Retry()) == "Retry"


def test_a_retry_carries_its_fields_as_attributes() -> None:
    cause = OSError("down")
    at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    retry = Retry(exc=cause, when=at, is_eta=True, new_args=(1,), new_kwargs={"b": 2})
    assert (retry.exc, retry.when, retry.is_eta) == (cause, at, True)
    assert (retry.new_args, retry.new_kwargs) == ((1,), {"b": 2})
    plain = Retry(when=3)
    assert (plain.is_eta, plain.new_args, plain.new_kwargs) == (False, None, None)
