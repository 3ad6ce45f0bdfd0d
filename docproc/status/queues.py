"""The tasks waiting in each broker queue, read from Redis lists or AMQP passive declares."""

from __future__ import annotations

import contextlib
import functools
import logging

import redis
from kombu import Connection

from docproc import queues
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings, as_redis_url

log = logging.getLogger("docproc.stats")

QUEUES = queues.ALL
# kombu's Redis transport keeps a queue's prioritised messages in lists named queue + sep + step.
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)


def _broker_redis(settings: Settings, ledger: RedisLedger) -> redis.Redis:
    url = as_redis_url(settings.broker)
    return ledger.redis if url == settings.redis_url else _redis_at(url)


@functools.lru_cache(maxsize=4)
def _redis_at(url: str) -> redis.Redis:
    """Return a client of the broker's Redis when it is not the ledger's, made once."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                decode_responses=True)


def queue_depths(settings: Settings, ledger: RedisLedger) -> dict[str, int | None]:
    """Return the tasks waiting in each queue (None when the broker cannot tell)."""
    if settings.broker.startswith("amqp"):
        return _amqp_depths(settings)
    try:
        client = _broker_redis(settings, ledger)
        pipe = client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{REDIS_PRIORITY_SEP}{step}")
        lengths = pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot read the queue lengths: %s", exc)
        return dict.fromkeys(QUEUES)
    per_queue = 1 + len(REDIS_PRIORITY_STEPS)
    return {queue: sum(lengths[i * per_queue:(i + 1) * per_queue])
            for i, queue in enumerate(QUEUES)}


def _amqp_depths(settings: Settings) -> dict[str, int | None]:
    depths: dict[str, int | None] = dict.fromkeys(QUEUES)
    try:
        with Connection(settings.broker, connect_timeout=2) as connection:
            for queue in QUEUES:
                channel = connection.channel()
                try:
                    _, waiting, _ = channel.queue_declare(queue, passive=True)
                    depths[queue] = int(waiting)
                except Exception:  # not declared yet: no worker ever consumed it
                    depths[queue] = 0
                finally:
                    # A failed passive declare closed the channel already.
                    with contextlib.suppress(Exception):
                        channel.close()
    except Exception as exc:  # kombu raises transport-specific errors
        log.warning("cannot read the queue lengths from %s: %s", settings.broker, exc)
    return depths
