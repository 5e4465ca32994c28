"""Celery's "Routing Tasks" example: a topic exchange and routing keys; only the imports
(and kombu's two classes, stood in for below) differ.

Queue and exchange names come from the environment so each test run has its own.
"""

import os

from celeriac import Celeriac as Celery


class Exchange:  # kombu.Exchange's attributes, as celeriac reads them
    def __init__(self, name, type="direct"):
        self.name, self.type = name, type


class Queue:  # kombu.Queue's
    def __init__(self, name, exchange=None, routing_key=None):
        self.name, self.exchange, self.routing_key = name, exchange, routing_key


IMAGES = os.environ.get("MEDIA_IMAGES_QUEUE", "images")
VIDEOS = os.environ.get("MEDIA_VIDEOS_QUEUE", "videos")
MEDIA = Exchange(os.environ.get("MEDIA_EXCHANGE", "media"), type="topic")

app = Celery("media_app")
app.conf.task_queues = (
    Queue(IMAGES, MEDIA, routing_key="media.images.#"),
    Queue(VIDEOS, MEDIA, routing_key="media.videos.#"),
)
app.conf.task_routes = {
    "media_app.resize": {"exchange": MEDIA.name, "routing_key": "media.images.resize"},
    "media_app.transcode": {"exchange": MEDIA, "routing_key": "media.videos.hd"},
}


@app.task
def resize(size):
    return f"resized to {size}"


@app.task
def transcode(codec):
    return f"transcoded to {codec}"
