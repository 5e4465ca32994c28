"""Everything public is importable from the package root, as documented."""

import celeriac


def test_all_names_exist() -> None:
    for name in celeriac.__all__:
        assert hasattr(celeriac, name), name


def test_design_names_are_public() -> None:
    from celeriac import AsyncResult, Celeriac, chain, chord, group, shared_task, signature  # noqa: F401
    from celeriac.exceptions import Retry, SoftTimeLimitExceeded, TimeLimitExceeded  # noqa: F401
