"""Where runs, results and tasks are kept. `open_store` is the one place a URL becomes a store."""

from __future__ import annotations

import os
import re

from sizeup.store.base import Store, StoreError
from sizeup.store.sqlite import SQLiteStore

__all__ = ["DEFAULT_URL", "SQLiteStore", "Store", "StoreError", "open_store"]

DEFAULT_URL = "sqlite:///./sizeup.db"
_SQLITE_PREFIX = "sqlite:///"
_BARE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _redacted(url: str) -> str:
    """The URL without a password, fit for an error message."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def open_store(url: str | None = None) -> Store:
    """Open the store named by `url`, else $SIZEUP_DB, else ./sizeup.db.

    SQLAlchemy's convention: sqlite:///rel/path.db is relative to the working directory,
    sqlite:////abs/path.db is absolute. A bare path ending in .db, .sqlite or .sqlite3 is accepted too.
    """
    url = url or os.environ.get("SIZEUP_DB") or DEFAULT_URL
    if url.startswith(_SQLITE_PREFIX):
        path = url[len(_SQLITE_PREFIX):]
        if not path:
            raise StoreError(f"store URL {url!r} names no file; write e.g. sqlite:///./sizeup.db")
        return SQLiteStore(path, url=url)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        raise StoreError(f"MongoDB stores are not supported yet: {_redacted(url)}; "
                         "use a sqlite:/// URL for now")
    if "://" not in url and url.lower().endswith(_BARE_SUFFIXES):
        return SQLiteStore(url)
    raise StoreError(f"unknown store URL {_redacted(url)!r}: expected sqlite:///path.db "
                     "or a path ending in .db")
