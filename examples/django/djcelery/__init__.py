"""The djcelery project. Loading the celeriac app here makes ``shared_task`` use it."""

from .celeriac import app as celeriac_app

__all__ = ["celeriac_app"]
