"""Settings of the djcelery example. Environment variables change what differs per machine:

``BROKER_URL``          the broker (default: the embedded SQLite file ``broker.sqlite3``)
``POSTGRES_HOST``       use PostgreSQL (with ``POSTGRES_DB``, ``POSTGRES_USER``,
                        ``POSTGRES_PASSWORD``, ``POSTGRES_PORT``) instead of SQLite
``SQLITE_PATH``         where the SQLite database lives (default ``db.sqlite3`` here)
``DEFAULT_RATE_LIMIT``  a rate limit for every task, e.g. ``1/m``
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-the-example-never-in-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",  # Django's Tasks framework (built into Django 6 as django.tasks)
    "celeriac.contrib.django",  # results in this database, admin, connection hygiene
    "cworker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "djcelery.urls"
WSGI_APPLICATION = "djcelery.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("POSTGRES_HOST"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["POSTGRES_HOST"],
            "PORT": os.environ.get("POSTGRES_PORT", "5432"),
            "NAME": os.environ.get("POSTGRES_DB", "djcelery"),
            "USER": os.environ.get("POSTGRES_USER", "postgres"),
            "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
            # Workers keep their connection between tasks and check it before use,
            # so a database restart costs a reconnect, not a failed task.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Kept between tasks: reopening a WAL database for each task costs ~8 ms.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            # Several worker processes write results: wait for the lock rather than fail,
            # and take it up front rather than upgrade it mid-transaction.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# -- celeriac: Celery's setting names under the CELERY_ namespace ----------------------------
CELERY_BROKER_URL = os.environ.get("BROKER_URL", f"sqlite:///{BASE_DIR / 'broker.sqlite3'}")
CELERY_RESULT_BACKEND = "django-db://"  # results in this database, visible in the admin
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ROUTES = {
    "cworker.tasks.task1": {"queue": "queue1"},
    "cworker.tasks.task2": {"queue": "queue2"},
}
CELERY_TASK_DEFAULT_RATE_LIMIT = os.environ.get("DEFAULT_RATE_LIMIT") or None
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_IMPORTS = ("cworker.dbtasks",)  # tasks that are not in a tasks.py

# -- Django's Tasks framework, run by celeriac workers ----------------------------------------
TASKS = {
    "default": {
        "BACKEND": "celeriac.contrib.django.tasks.CeleriacBackend",
        "QUEUES": ["default", "queue1", "queue2"],
        "OPTIONS": {"APP": "djcelery.celeriac:app"},
    }
}
