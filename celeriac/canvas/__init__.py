"""Canvas: signatures and workflows (chain, group, chord, chunks, map, starmap).

See :mod:`celeriac.canvas.signature` for signatures and partial application,
:mod:`celeriac.canvas.workflows` for how each workflow runs on the workers,
and :mod:`celeriac.canvas.errbacks` for what an errback receives.
"""

from __future__ import annotations

from . import builtins as _builtins  # noqa: F401  (registers celeriac.map and celeriac.starmap)
from .chain import chain
from .chord import chord
from .group import chunks, group, xmap, xstarmap
from .signature import Signature, maybe_signature, signature

__all__ = [
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "xmap",
    "xstarmap",
]
