"""Database connections kept from one piece of work to the next by the threads that do many
small ones: the sockets' frames thread (chat.consumers) and the HTTP threads
(config.handlers).

Django opens a connection per request and closes it at the end (CONN_MAX_AGE=0: under an
ASGI server each request may have a thread of its own, and a kept connection would outlive
it). A thread that lives as long as the process can keep its connection instead: opening a
SQLite connection, with its pragmas, was a third of a socket message's cost.
"""

from __future__ import annotations

from django.db import connections


def replace_failed() -> None:
    """Before the thread's next piece of work: close each of its connections that failed
    and cannot be used, or that was left outside autocommit (the next query opens a new
    one), as Django does between requests; keep the others."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.autocommit != connection.settings_dict["AUTOCOMMIT"]:
            connection.close()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


def release_pooled() -> None:
    """After a piece of work: hand the thread's pooled connections (PostgreSQL's psycopg
    pool) back, since taking one again costs next to nothing and a held one is missing from
    the pool. A connection of its own (SQLite) is kept."""
    for connection in connections.all(initialized_only=True):
        if connection.settings_dict.get("OPTIONS", {}).get("pool"):
            connection.close()
