"""Where runs, results and tasks are kept. `open_store` is the one place a URL becomes a store."""

from __future__ import annotations

import os

from sizeup.store.base import Store, StoreError, redacted_url
from sizeup.store.sqlite import SQLiteStore

__all__ = ["DEFAULT_URL", "MONGODB_PREFIXES", "SQLiteStore", "Store", "StoreError", "open_store"]

DEFAULT_URL = "sqlite:///./sizeup.db"
_SQLITE_PREFIX = "sqlite:///"
_BARE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
MONGODB_PREFIXES = ("mongodb://", "mongodb+srv://")


def open_store(url: str | None = None, *, read_only: bool = False) -> Store:
    """Open the store named by `url`, else $SIZEUP_DB, else ./sizeup.db.

    SQLite follows SQLAlchemy's convention: sqlite:///rel/path.db is relative to the working directory,
    sqlite:////abs/path.db is absolute. A bare path ending in .db, .sqlite or .sqlite3 is accepted too.
    mongodb://[user:password@]host:port/dbname opens a MongoDB store (database "sizeup" when the URL
    names none); it needs pymongo (the `mongo` extra).
    read_only: the store never writes (SQLite opens the file with mode=ro; MongoDB writes no schema document
    and no index, and its write methods refuse), so a user or file without write access can still read it.
    """
    url = url or os.environ.get("SIZEUP_DB") or DEFAULT_URL
    if url.startswith(_SQLITE_PREFIX):
        path = url[len(_SQLITE_PREFIX) :]
        if not path:
            raise StoreError(f"store URL {url!r} names no file; write e.g. sqlite:///./sizeup.db")
        return SQLiteStore(path, url=url, read_only=read_only)
    if url.startswith(MONGODB_PREFIXES):
        try:  # imported here: SQLite users need not install pymongo
            from sizeup.store.mongo import MongoStore
        except ImportError as exc:
            raise StoreError(f"a MongoDB store needs pymongo ({exc}); install sizeup[mongo]") from None
        return MongoStore(url, read_only=read_only)
    if "://" not in url and url.lower().endswith(_BARE_SUFFIXES):
        return SQLiteStore(url, read_only=read_only)
    raise StoreError(
        f"unknown store URL {redacted_url(url)!r}: expected sqlite:///path.db, "
        "a path ending in .db, or mongodb://host:port/dbname"
    )
