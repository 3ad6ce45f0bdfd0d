"""A worker node's heartbeat: every second, that it lives and which documents it holds."""

from __future__ import annotations

import logging
import threading

from celery.worker import state as worker_state
from redis import RedisError

from docproc.broker import redis_client
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings

# Logged under the name it had in docproc.tasks: log filters select it.
log = logging.getLogger("docproc.tasks")

HEARTBEAT_SECONDS = 1.0
NODE_TTL_SECONDS = 4.0

_heartbeat_stop = threading.Event()


def start(node: str, settings: Settings) -> None:
    """Start beating for this worker node, in a daemon thread, until stop()."""
    threading.Thread(target=beat, args=(node, settings), name="docproc-heartbeat",
                     daemon=True).start()


def stop() -> None:
    """Stop the heartbeat thread after its current beat."""
    _heartbeat_stop.set()


def held_keys() -> list[str]:
    """Return the keys of the documents this worker node has reserved or is running."""
    for _ in range(5):
        try:
            requests = [*worker_state.active_requests, *worker_state.reserved_requests]
            break
        except RuntimeError:  # the sets changed while being copied
            continue
    else:
        requests = []
    keys: list[str] = []
    for request in requests:
        try:
            keys.extend(job["key"] for job in request.args[0])
        except (IndexError, KeyError, TypeError, AttributeError):
            continue
    return keys


def beat(node: str, settings: Settings) -> None:
    """Publish, every second, that this node lives and which documents it holds."""
    ledger = RedisLedger(redis_client(settings))
    failing = False
    # The first beat at once: a node killed in its first second must still be seen to vanish.
    while True:
        try:
            ledger.heartbeat(node, held_keys(), NODE_TTL_SECONDS)
            failing = False
        except RedisError as exc:
            if not failing:
                log.warning("heartbeat of %s failed: %s", node, exc)
            failing = True
        if _heartbeat_stop.wait(HEARTBEAT_SECONDS):
            return
