"""kombu's filesystem transport, with messages and bindings written atomically.

The stock transport creates a message file, then writes into it; a consumer polling the folder
can move the file away between the two and read it empty, which kills the worker with a
JSONDecodeError (seen here under load). Its binding table is truncated before it is rewritten,
and other threads can route by it before it is written at all, so a publisher may find no queue
and drop its message. Here messages and tables are written to a temporary name and renamed into
place (tables under a lock, before the binding is recorded), so whatever a reader sees is
complete.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # "<queue>.msg.part" is not "<queue>.msg": never consumed
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs) -> None:
        # kombu records a binding in the process-wide state before writing it to the table on
        # disk; another thread that sees the state's binding skips its own write and routes by
        # a table that may not exist yet, dropping its message. Write the table first.
        exchange = exchange or "amq.direct"
        meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
        self._queue_bind(exchange, *meta)
        super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)

    def _queue_bind(self, exchange, routing_key, pattern, queue) -> None:
        table_file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with open(f"{table_file}.lock", "wb") as guard:
                filesystem.lock(guard, filesystem.LOCK_EX)
                try:
                    table = self.get_table(exchange)
                    if binding in table:
                        return
                    partial = f"{table_file}.{uuid.uuid4().hex}.part"
                    with open(partial, "wb") as handle:
                        handle.write(str_to_bytes(dumps([binding, *table])))
                    os.replace(partial, table_file)
                finally:
                    filesystem.unlock(guard)
        except OSError as exc:
            raise ChannelError(f"Cannot bind {queue!r} to {exchange!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
