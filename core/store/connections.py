"""pynamodb connections on the process's one botocore session (core/aws.py).

pynamodb makes a connection per model and a botocore session per connection, so a fresh
process used to make one session and one client per table it touched (four for a payment
notification: ~1.5 s of a 1.8 s first answer). Here every model reads through one shared
connection and every write goes through one more (core/store/tx.py: botocore's retries
off), both on the shared session: one client per retry policy, made on first use.
Our models' Meta differ only in table name and retries, so nothing else of a model's Meta
is lost by sharing.
"""

from __future__ import annotations

from pynamodb.connection import Connection, TableConnection
from pynamodb.models import Model

from core import aws


class SharedSessionConnection(Connection):
    """A pynamodb connection whose client comes from the shared botocore session."""

    @property
    def session(self):
        return aws.session()

    @property
    def client(self):
        with aws.LOCK:  # making a client from one session is not thread-safe
            return Connection.client.fget(self)


_by_retries: dict[int | None, SharedSessionConnection] = {}


def connection(max_retry_attempts: int | None) -> SharedSessionConnection:
    """The connection for a retry policy (None: pynamodb's default; 0: botocore's retries off)."""
    conn = _by_retries.get(max_retry_attempts)
    if conn is None:
        with aws.LOCK:
            conn = _by_retries.setdefault(max_retry_attempts,
                                          SharedSessionConnection(max_retry_attempts=max_retry_attempts))
    return conn


def share(table: TableConnection, max_retry_attempts: int | None) -> TableConnection:
    """Point a model's table connection at the shared connection (its table's schema
    goes along, so the shared connection can serialise that table's keys)."""
    shared = connection(max_retry_attempts)
    if table.connection is not shared:
        with aws.LOCK:
            try:
                shared.add_meta_table(table.get_meta_table())
            except ValueError:
                pass  # another model of the same table, or another thread, added it first
            table.connection = shared
    return table


def reset() -> None:
    """Forget every connection and client, so that the next call makes new ones for the
    AWS variables as they are now (tests that move the endpoint; a new Lambda instance)."""
    with aws.LOCK:
        _by_retries.clear()
        todo = list(Model.__subclasses__())
        while todo:
            cls = todo.pop()
            todo += cls.__subclasses__()
            cls._connection = None
        aws.reset()
