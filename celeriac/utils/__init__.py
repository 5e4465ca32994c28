"""Helpers at the paths Celery's code imports them from (``celeriac.utils.log``)."""
