"""Uses of typed tasks, checked by ``test_typing.py`` with mypy --strict and pyright.

Not run: type-checked only. Every line marked ``# expect-error`` must be reported
by each checker and every other line must pass; ``assert_type`` pins what the
checkers infer.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from celeriac import AsyncResult, Celeriac, chain, shared_task
from celeriac.canvas import Signature
from celeriac.result import EagerResult
from celeriac.task import AsyncTask, Task

app = Celeriac("typed", broker="memory://typed", backend="memory://typed", set_as_current=False)


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(queue="math", priority=5, max_retries=3)
def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


@app.task(bind=True, acks_late=True)
def greet(self: Task[Any, Any], name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation} ({self.request.retries})"


@app.task
async def fetch(url: str) -> bytes:
    return url.encode()


@app.task(bind=True)
async def fetch_bound(self: Task[Any, Any], url: str, timeout: float = 1.0) -> bytes:
    return url.encode()


@shared_task
def shout(text: str) -> str:
    return text.upper()


@shared_task(bind=True, name="typed.shared_bound")
def shared_bound(self: Task[Any, Any], n: int) -> list[int]:
    return [n]


# -- the decorators keep the function's parameters and result -------------------------
add_task: Task[[int, int], int] = add
fetch_task: AsyncTask[[str], bytes] = fetch
shout_task: Task[[str], str] = shout
greet_with_self: Task[[Task[Any, Any], str], str] = greet  # expect-error
wrong_result: Task[[int, int], str] = add  # expect-error

# -- delay: arguments checked, the result typed ----------------------------------------
assert_type(add.delay(1, 2), AsyncResult[int])
assert_type(add.delay(1, 2).get(timeout=1), int)
assert_type(scale.delay(1.5).get(), float)
assert_type(scale.delay(1.5, factor=3).get(), float)
assert_type(greet.delay("ann").get(), str)
assert_type(greet.delay("ann", punctuation="?").get(), str)
assert_type(fetch.delay("http://x").get(), bytes)
assert_type(fetch_bound.delay("http://x", 2.0).get(), bytes)
assert_type(shout.delay("x").get(), str)
assert_type(shared_bound.delay(3).get(), list[int])
add.delay("x", 2)  # expect-error
add.delay(1, 2, 3)  # expect-error
add.delay(1)  # expect-error
add.delay(1, c=2)  # expect-error
greet.delay(greet, "ann")  # expect-error
greet.delay("ann", "?")  # expect-error
fetch.delay(b"http://x")  # expect-error
shout.delay(1)  # expect-error
shared_bound.delay("3")  # expect-error
total = add.delay(1, 2).get() + "s"  # expect-error
body = fetch_bound.delay("u").get().upper() + "s"  # expect-error

# -- delay_on_commit and apply: same checks ------------------------------------------------
assert_type(add.delay_on_commit(1, 2), AsyncResult[int])
add.delay_on_commit(1, "2")  # expect-error
assert_type(add.apply((1, 2)), EagerResult[int])

# -- apply_async: options checked; args= and kwargs= cannot be tied to the parameters ------
assert_type(add.apply_async((1, 2), queue="q", priority=9, countdown=1.0), AsyncResult[int])
assert_type(add.apply_async(args=[1, 2]).get(), int)
add.apply_async((1, 2), priority="high")  # expect-error
add.apply_async((1, 2), countdown="soon")  # expect-error

# -- calling the task here -----------------------------------------------------------------
assert_type(add(1, 2), int)
assert_type(greet("ann"), str)
add(1, "2")  # expect-error
greet(greet, "ann")  # expect-error


async def awaits_async_tasks() -> None:
    assert_type(await fetch("u"), bytes)
    assert_type(await fetch_bound("u", timeout=2.0), bytes)
    assert_type(await add.delay(1, 2).aget(), int)
    await fetch(1)  # expect-error


# -- signatures: si takes the full arguments; s the full ones or all but the first --------
assert_type(add.si(1, 2), Signature)
assert_type(add.s(1, 2), Signature)
assert_type(add.s(2), Signature)  # in a chain, the previous result comes first
add.si(1)  # expect-error
add.si(1, "2")  # expect-error
add.s("x")  # expect-error
add.s(1, 2, 3)  # expect-error
add.s()  # expect-error
greet.s("ann", punctuation=1)  # expect-error

# -- chains: checked as signatures, their result is Any (see docs/typing.md) ---------------
workflow = chain(add.s(1, 2), scale.s(factor=3.0))
assert_type((add.s(1, 2) | scale.s()).apply_async(), Any)
assert_type(workflow.apply_async().get(), Any)
