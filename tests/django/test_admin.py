"""Results stored by a worker in the Django database, seen through the admin."""

from __future__ import annotations

from typing import Any

import pytest

from .inprocess import running_worker


@pytest.fixture
def admin_client(app: Any) -> Any:
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.filter(username="admin").delete()
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_a_result_is_listed_filtered_searched_and_shown(app: Any, admin_client: Any) -> None:
    from cworker.tasks import t1, task2

    # Given a worker ran two tasks, one of them failing
    with running_worker(app, ["celeriac", "queue2"]):
        ok = t1.delay(5, 10, message="The sum is")
        assert ok.get(timeout=10) == "The sum is 15"
        bad = t1.delay("5", 10)  # "5" + 10 fails in the worker
        with pytest.raises(TypeError):
            bad.get(timeout=10)
        other = task2.delay()
        other.get(timeout=10)

    # Expect both listed in the admin, filterable by state and task, searchable by id
    listing = admin_client.get("/admin/celeriac/taskresult/")
    assert listing.status_code == 200
    assert ok.id in listing.text and bad.id in listing.text and other.id in listing.text
    failures = admin_client.get("/admin/celeriac/taskresult/", {"state__exact": "FAILURE"})
    assert bad.id in failures.text and ok.id not in failures.text
    by_name = admin_client.get("/admin/celeriac/taskresult/", {"name": "cworker.tasks.task2"})
    assert other.id in by_name.text and ok.id not in by_name.text
    found = admin_client.get("/admin/celeriac/taskresult/", {"q": ok.id})
    assert ok.id in found.text and bad.id not in found.text

    # and the detail page shows the decoded result and the failure's traceback
    detail = admin_client.get(f"/admin/celeriac/taskresult/{ok.id}/change/")
    assert detail.status_code == 200 and "The sum is 15" in detail.text
    failed = admin_client.get(f"/admin/celeriac/taskresult/{bad.id}/change/")
    assert "Traceback" in failed.text and "TypeError" in failed.text


def test_the_admin_is_read_only(app: Any, admin_client: Any) -> None:
    from celeriac.backends.base import TaskMeta

    app.backend.store([TaskMeta("ro-1", "SUCCESS", result=1, name="cworker.tasks.add")])
    listing = admin_client.get("/admin/celeriac/taskresult/")
    assert "ro-1" in listing.text
    assert "Add task result" not in listing.text and "Delete selected" not in listing.text
    assert admin_client.get("/admin/celeriac/taskresult/add/").status_code == 403
    change = admin_client.post("/admin/celeriac/taskresult/ro-1/change/", {"state": "FAILURE"})
    assert change.status_code == 403
    assert admin_client.post("/admin/celeriac/taskresult/ro-1/delete/").status_code == 403
    assert app.backend.get("ro-1").state == "SUCCESS"
