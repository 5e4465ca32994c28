"""Tasks that use Django: the ORM, and Django's Tasks framework.

Listed in ``CELERY_IMPORTS`` (they are not in a ``tasks.py``), so workers of
the project import them once Django is set up.
"""

from django.utils import timezone
from django_tasks import task

from celeriac import shared_task

from .models import Signup


@shared_task
def welcome(signup_id: int) -> str:
    """Sent with ``delay_on_commit``: the row exists by the time this runs."""
    signup = Signup.objects.get(pk=signup_id)
    signup.welcomed_at = timezone.now()
    signup.save(update_fields=["welcomed_at"])
    return f"welcomed {signup.email}"


@task(priority=50)
def word_count(text: str) -> int:
    """A Tasks-framework task: ``word_count.enqueue(text)``, run by a celeriac worker."""
    return len(text.split())
