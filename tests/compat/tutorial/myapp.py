"""Celery's examples/app/myapp.py, with only the import changed.

Usage::

   (window1)$ python myapp.py worker -l INFO

   (window2)$ python
   >>> from myapp import add
   >>> add.delay(16, 16).get()
   32
"""

from celeriac import Celeriac as Celery

app = Celery(
    "myapp",
    broker="amqp://guest@localhost//",
    # ## add result backend here if needed.
    # backend='rpc'
)


@app.task
def add(x, y):
    return x + y


if __name__ == "__main__":
    app.start()
