"""RabbitMQ (``amqp://``, ``amqps://``): the broker, with native priorities and publisher confirms.

What RabbitMQ has no native form of (delays, dead letters with reasons, streams,
flags, rate slots) is built from queues, exchanges and TTLs in this package.
"""
