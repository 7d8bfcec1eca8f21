"""The shared cache: counters within a time window, and the backends whose ``incr`` they need.

``count_in_window`` is the one way our code counts in the cache (circuit-breaker failures,
worker losses of a message, failed device sign-ins, addresses mailed in an hour). A counter
starts at its first count and lapses ``window`` seconds later; counting is atomic across
processes. That needs an ``incr`` that is atomic, never creates a key and keeps its expiry,
which neither of Django's backends we use gives:

- Django's database cache reads and then writes, so two processes can lose an increment, and
  writes with the default timeout (a counter of an hour lapsed five minutes after its last
  count). Here the row is held for the read-modify-write (SQLite's IMMEDIATE transactions, see
  settings, serialise writers; other databases take ``SELECT ... FOR UPDATE``) and only its
  value is written.
- Django's Redis cache asks whether the key exists, then INCRBYs it: a key that expires between
  the two comes back without an expiry, a counter that never lapses. Here one script does both.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from django.core.cache import cache as default_cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import connections, router, transaction


def count_in_window(
    key: str, window: int, amount: int = 1, *, cache: BaseCache | None = None
) -> int:
    """Add `amount` to the counter `key` and return its total. A counter that does not exist
    (never counted, or lapsed) starts with this count and lapses `window` seconds later."""
    cache = cache or default_cache
    while True:
        if cache.add(key, amount, timeout=window):
            return amount
        try:
            return cache.incr(key, amount)
        except ValueError:  # it lapsed since add() found it: this count starts a new window
            continue


class DatabaseCache(DjangoDatabaseCache):
    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)  # type: ignore[attr-defined]
        stored_key = self.make_and_validate_key(key, version=version)
        with transaction.atomic(using=db), connection.cursor() as cursor:
            if connection.features.has_select_for_update:
                cursor.execute(
                    f"SELECT cache_key FROM {table} WHERE cache_key = %s FOR UPDATE",  # noqa: S608
                    [stored_key],
                )
            value = self.get(key, version=version)  # None when missing or lapsed
            if value is None:
                raise ValueError(f"Key '{key}' not found")
            total: int = value + delta
            # The value alone, stored as Django's database cache stores one; the expiry stays.
            encoded = base64.b64encode(pickle.dumps(total, self.pickle_protocol)).decode("latin1")
            cursor.execute(
                f"UPDATE {table} SET value = %s WHERE cache_key = %s",  # noqa: S608
                [encoded, stored_key],
            )
            return total


_INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""


class RedisCache(DjangoRedisCache):
    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        stored_key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(stored_key, write=True)
        total = client.eval(_INCR_EXISTING, 1, stored_key, delta)
        if total is None:
            raise ValueError(f"Key '{key}' not found")
        return int(total)
