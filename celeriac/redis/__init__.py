"""Redis: the broker (``redis://``, ``rediss://``, Sentinel, Cluster) and the result backend.

Both speak to Redis through one client wrapper (``client``) and Lua scripts sent by
SHA (``scripts``, ``lua/``); a worker whose broker and backend share one server
stores a task's result and acks its message in one round trip.
"""
