"""A Django project's settings with Celery's documented CELERY_ settings; the broker and
result URLs come from the environment the test gives."""

import os

SECRET_KEY = "not-a-secret"
DEBUG = False
INSTALLED_APPS = ["demoapp"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJANGO_DB"]}}
USE_TZ = True

# Celery Configuration Options
CELERY_TIMEZONE = "Australia/Tasmania"
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_BROKER_URL = os.environ["PROJECT_BROKER_URL"]
CELERY_RESULT_BACKEND = os.environ["PROJECT_RESULT_BACKEND"]
