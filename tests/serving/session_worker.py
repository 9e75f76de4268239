"""A child process for the session-store tests: waits for a line on stdin, then appends turns and acknowledges.

Usage: ``python session_worker.py DATABASE SESSION_ID NAME COUNT`` (COUNT 0: until killed). Turn k has text
``NAME:k`` and a callable state ``b"<number of previous turns>|NAME:k"``; after each ``append`` returns the
worker prints the turn's index and flushes, so every printed index is an acknowledged, committed turn.
"""

from __future__ import annotations

import itertools
import sys

from hashbert.serving.sessions import SessionStore


def main(database: str, session_id: str, name: str, count: int) -> None:
    store = SessionStore(database)
    sys.stdin.readline()
    for k in range(count) if count else itertools.count():
        text = f"{name}:{k}"
        turn = store.append(session_id, "user", k % 2, text, lambda s, text=text: f"{len(s.turns)}|{text}".encode())
        print(turn.index, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
