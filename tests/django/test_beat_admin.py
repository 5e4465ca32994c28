"""Periodic tasks edited in Django's admin reach the beat's schedule in the broker."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def admin_client(app: Any) -> Any:
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.filter(username="admin").delete()
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _entries(app: Any) -> dict[str, Any]:
    from celeriac.beat import list_entries

    statuses, _ = list_entries(app)
    return {s.entry.name: s.entry for s in statuses}


FORM = {
    "name": "nightly-report",
    "task": "cworker.tasks.t1",
    "every": "",
    "minute": "30",
    "hour": "2",
    "day_of_week": "mon-fri",
    "day_of_month": "",
    "month_of_year": "",
    "args": "[1, 2]",
    "kwargs": '{"message": "sum"}',
    "queue": "queue2",
    "priority": "7",
    "expires": "",
    "catch_up": "skip",
    "enabled": "on",
}


def test_add_edit_disable_run_and_delete_in_the_admin(app: Any, admin_client: Any) -> None:
    from celeriac.contrib.django.models import PeriodicTask
    from celeriac.schedules import crontab

    # Given a periodic task added in the admin
    added = admin_client.post("/admin/celeriac/periodictask/add/", FORM)
    assert added.status_code == 302, added.content.decode()[:2000]
    # Expect it in the broker's schedule, as the form said
    entry = _entries(app)["nightly-report"]
    assert (
        entry.task == "cworker.tasks.t1"
        and entry.args == (1, 2)
        and entry.kwargs == {"message": "sum"}
    )
    assert entry.schedule == crontab(30, 2, day_of_week="mon-fri")
    assert entry.options == {"queue": "queue2", "priority": 7} and entry.catch_up == "skip"
    assert not entry.paused
    row = PeriodicTask.objects.get(name="nightly-report")
    # a bad crontab field is refused by the form, naming it
    bad = admin_client.post(
        f"/admin/celeriac/periodictask/{row.pk}/change/", {**FORM, "hour": "25"}
    )
    assert bad.status_code == 200 and "hour=&#x27;25&#x27;" in bad.content.decode()
    # disabled: paused; renamed: the old name leaves the schedule
    changed = {**FORM, "name": "weekday-report", "every": "", "enabled": ""}
    assert (
        admin_client.post(f"/admin/celeriac/periodictask/{row.pk}/change/", changed).status_code
        == 302
    )
    entries = _entries(app)
    assert "nightly-report" not in entries and entries["weekday-report"].paused
    # the list shows it; "run now" sends one run
    listing = admin_client.get("/admin/celeriac/periodictask/").content.decode()
    assert "weekday-report" in listing and "crontab" in listing
    for queue in app.broker.queues():
        app.broker.purge(queue)
    ran = admin_client.post(
        "/admin/celeriac/periodictask/", {"action": "run_now", "_selected_action": [row.pk]}
    )
    assert ran.status_code == 302
    [delivery] = app.broker.fetch(["queue2"], "t", 10, 0.5)
    assert delivery.priority == 7
    # deleted: gone from the schedule
    row.refresh_from_db()
    row.delete()
    assert "weekday-report" not in _entries(app)
