"""SQL result backend through SQLAlchemy Core (``db+postgresql://``, ``db+mysql://``, ``db+sqlite://``)."""
