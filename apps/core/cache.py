"""The embedded default's shared cache: Django's database cache with an atomic ``incr``.

Django's stock ``incr`` reads and then writes, so two processes can lose an increment. Here the
read-modify-write runs in one transaction holding the row: SQLite's IMMEDIATE transactions
(see settings) serialise writers, other databases take ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, router, transaction


class DatabaseCache(DjangoDatabaseCache):
    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        with transaction.atomic(using=db):
            if connection.features.has_select_for_update:
                table = connection.ops.quote_name(self._table)  # type: ignore[attr-defined]
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT cache_key FROM {table} WHERE cache_key = %s FOR UPDATE",  # noqa: S608
                        [self.make_and_validate_key(key, version=version)],
                    )
            return super().incr(key, delta, version)
