"""URLs: the scenarios page at ``/`` and the admin (task results) at ``/admin/``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("cworker.urls")),
]
