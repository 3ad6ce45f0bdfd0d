"""Small bookkeeping in Redis: named locks, notes, and hashes kept for a while."""

from __future__ import annotations

from docproc.ledger import keyspace, scripts
from docproc.ledger.model import now
from docproc.ledger.store import RedisStore


class RedisBookkeeping(RedisStore):
    """Locks that expire by themselves, notes that stay, hashes that expire."""

    def lock(self, name: str, seconds: float) -> bool:
        """Take a named lock that expires by itself; return whether this caller has it."""
        return bool(self.redis.set(keyspace.lock_key(name), now(), nx=True,
                                   px=int(seconds * 1000)))

    def hold_lock(self, name: str, owner: str, seconds: float) -> bool:
        """Take a named lock for owner, or extend it when owner has it; return whether it does."""
        return bool(scripts.run(self.redis, "hold_lock", [keyspace.lock_key(name)],
                                [owner, int(seconds * 1000)]))

    def release_lock(self, name: str, owner: str) -> None:
        """Release a named lock if owner holds it."""
        scripts.run(self.redis, "release_lock", [keyspace.lock_key(name)], [owner])

    def lock_holder(self, name: str) -> str | None:
        """Return who holds a named lock, if anyone."""
        value = self.redis.get(keyspace.lock_key(name))
        return None if value is None else str(value)

    def note(self, name: str, value: str | None = None) -> str | None:
        """Read a small piece of bookkeeping, or write it when a value is given."""
        if value is not None:
            self.redis.hset(keyspace.NOTES, name, value)
            return value
        found = self.redis.hget(keyspace.NOTES, name)
        return None if found is None else str(found)

    def keep(self, name: str, fields: dict[str, str], seconds: float) -> None:
        """Keep a small hash of bookkeeping for a while."""
        pipe = self.redis.pipeline()
        pipe.hset(keyspace.kept_key(name), mapping=fields)  # type: ignore[arg-type]
        pipe.expire(keyspace.kept_key(name), int(seconds))
        pipe.execute()

    def kept(self, name: str) -> dict[str, str]:
        """Return a hash kept with `keep`, empty once it expired."""
        return {str(k): str(v) for k, v in self.redis.hgetall(keyspace.kept_key(name)).items()}
