"""The ledger's Lua scripts (lua/*.lua), run by SHA and loaded when a server lacks them."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis

Call = tuple[list[str], list[Any]]


@dataclass(frozen=True)
class Script:
    """A Lua script's source and its SHA1, the name servers cache it under."""

    source: str
    sha: str


@functools.cache
def script(name: str) -> Script:
    """Return the script lua/<name>.lua, read and hashed once per process."""
    source = resources.files("docproc.ledger").joinpath("lua", f"{name}.lua").read_text("utf-8")
    return Script(source, hashlib.sha1(source.encode("utf-8")).hexdigest())


def run(client: redis.Redis, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run a script once and return its reply."""
    return run_many(client, name, [(list(keys), list(args))])[0]


def run_many(client: redis.Redis, name: str, calls: Sequence[Call]) -> list[Any]:
    """Run a script once per (keys, args) in one round trip, loading it if the server lacks it.

    Unlike a redis-py pipeline of Script calls, this asks no SCRIPT EXISTS first.
    """
    lua = script(name)

    def execute() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(lua.sha, len(keys), *keys, *args)
        return list(pipe.execute())

    try:
        return execute()
    except redis.exceptions.NoScriptError:
        client.script_load(lua.source)
        return execute()
