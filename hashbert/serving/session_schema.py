"""The session database's schema (versioned in its ``meta`` table), created or checked on open."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KIND = "hashbert-sessions"

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, last_used REAL NOT NULL, "
    "next_turn INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX sessions_last_used ON sessions (last_used)",
    "CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE, "
    "turn_index INTEGER NOT NULL, role TEXT NOT NULL CHECK (role IN ('user', 'bot')), "
    "speaker INTEGER NOT NULL, text TEXT NOT NULL, state BLOB NOT NULL, created REAL NOT NULL, "
    "PRIMARY KEY (session_id, turn_index))",
)
# Deletes the least recently used sessions so that one more stays within the cap (?).
EVICT_LEAST_RECENT = (
    "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY last_used, created, id "
    "LIMIT max(0, (SELECT COUNT(*) FROM sessions) - ? + 1))"
)


def create_or_check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in an empty database, else check that it is a session database this code reads.

    Raises:
        ValueError: another kind of database, or a schema version newer than ``SCHEMA_VERSION``.
    """
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("kind", KIND), ("schema_version", str(SCHEMA_VERSION))],
        )
        logger.info("created session database %s (schema version %d)", path, SCHEMA_VERSION)
        return
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    if meta.get("kind") != KIND:
        raise ValueError(f"{path}: not a hashbert session database (tables: {', '.join(sorted(tables))})")
    version = meta.get("schema_version", "")
    if not version.isdigit() or int(version) < 1:
        raise ValueError(f"{path}: not a hashbert session database (schema version {version!r})")
    if int(version) > SCHEMA_VERSION:
        raise ValueError(
            f"{path}: session database schema version {version} is newer than this hashbert "
            f"supports (schema version {SCHEMA_VERSION}); upgrade hashbert"
        )
