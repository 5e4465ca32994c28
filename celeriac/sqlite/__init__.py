"""SQLite: the embedded broker (``sqlite:///path``) and its result backend, one file for both.

Many worker processes on one machine share the file; WAL mode and short write
transactions keep them from blocking each other (``db``).
"""
