"""The example app: tasks, scenarios, and a page that runs them."""

from django.apps import AppConfig


class CworkerConfig(AppConfig):
    name = "cworker"
    default_auto_field = "django.db.models.BigAutoField"
