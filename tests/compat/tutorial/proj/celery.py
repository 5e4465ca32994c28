"""Celery's "Next Steps" proj/celery.py, with only the import changed."""

from celeriac import Celeriac as Celery

app = Celery("proj", broker="amqp://", backend="rpc://", include=["proj.tasks"])

# Optional configuration, see the application user guide.
app.conf.update(
    result_expires=3600,
)

if __name__ == "__main__":
    app.start()
