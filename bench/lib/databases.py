"""Throwaway PostgreSQL databases for the benchmarks and the chaos run: made fresh beside the project's database
(the embedded one unless DATABASE_URL says otherwise) and dropped afterwards, so no run touches dev data. Ledger
rows cannot be deleted by design, hence a database per run rather than a cleanup."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def admin_url(url: str) -> str:
    """The same server's maintenance database, to create, drop or look at others from."""
    return _with_database(url, "postgres")


def throwaway_database(name: str) -> str:
    """Drop ``name`` if a crashed run left it, create it anew and return its URL."""
    import psycopg

    from saaskit import embedded

    base = os.environ.get("DATABASE_URL") or embedded.postgres_url()
    with psycopg.connect(admin_url(base), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return _with_database(base, name)


def drop_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
