"""The command-line chat over a retriever: each input line is a user turn; the user picks the bot's reply.

Works on any line source (a terminal or piped stdin): ``run_chat(retriever, lines, write, k)``. After each
user turn the top-k candidates are shown; the next line picks one by number (Enter takes the first) and it
becomes the bot's turn. Commands: ``/reset``, ``/save FILE`` (JSON of the turns with their cached states in
base64, written atomically), ``/load FILE``, ``/quit``; end of input ends the chat.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from hashbert.io import read_json, write_json
from hashbert.serving.retriever import STAGES, Candidate, Conversation, Retriever, Selection

logger = logging.getLogger(__name__)

USER, BOT = 0, 1
SAVE_FORMAT = 1
HELP = "type a message; pick a reply by number (Enter: the first); /reset, /save FILE, /load FILE, /quit"


def format_selection(selection: Selection) -> str:
    """Numbered candidates with scores, then the milliseconds of each stage."""
    lines = [f"{n:>3}. [{c.score:.4f}] {c.text}" for n, c in enumerate(selection.candidates, 1)]
    lines.append("    (" + ", ".join(f"{s} {selection.timings_ms[s]:.2f} ms" for s in STAGES) + ")")
    return "\n".join(lines)


def save_conversation(conversation: Conversation, path: str | Path, fingerprint: str) -> None:
    """Write the turns and their states (base64) as JSON, atomically."""
    turns = [
        {"text": text, "speaker": speaker, "state": base64.b64encode(state).decode("ascii")}
        for text, speaker, state in conversation.turns
    ]
    write_json(path, {"format": SAVE_FORMAT, "model_fingerprint": fingerprint, "turns": turns})


def load_conversation(retriever: Retriever, path: str | Path) -> Conversation:
    """Read a file written by ``save_conversation`` back into a conversation (nothing is re-encoded).

    Raises:
        ValueError: another format, another model, or malformed turns (``ArtefactError`` for unreadable JSON).
    """
    saved = read_json(path)
    if not isinstance(saved, dict) or saved.get("format") != SAVE_FORMAT:
        raise ValueError(f"{path}: not a saved chat (format {SAVE_FORMAT})")
    if saved.get("model_fingerprint") != retriever.manifest.model_fingerprint:
        raise ValueError(f"{path}: saved with another model than this bundle's")
    try:
        turns = [(t["text"], int(t["speaker"]), base64.b64decode(t["state"], validate=True)) for t in saved["turns"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: malformed turns ({err})") from err
    return Conversation.restore(retriever, turns)


def _command(line: str, conversation: Conversation, retriever: Retriever, write) -> Conversation | None:
    """Run a ``/command``; the conversation to go on with, or None to quit."""
    name, _, argument = line.partition(" ")
    argument = argument.strip()
    if name == "/quit":
        return None
    try:
        if name == "/reset":
            conversation.reset()
            write("(conversation reset)")
        elif name in ("/save", "/load") and not argument:
            write(f"usage: {name} FILE")
        elif name == "/save":
            save_conversation(conversation, argument, retriever.manifest.model_fingerprint)
            write(f"(saved {len(conversation)} turns to {argument})")
        elif name == "/load":
            conversation = load_conversation(retriever, argument)
            write(f"(loaded {len(conversation)} turns from {argument})")
        else:
            write(f"unknown command {name}; {HELP}")
    except (OSError, ValueError) as err:
        write(f"error: {err}")
    return conversation


def _pick(lines: Iterator[str], candidates: list[Candidate], write) -> Candidate | str | None:
    """The candidate the next line picks, a command line to run instead, or None at the end of input."""
    while (line := next(lines, None)) is not None:
        line = line.strip()
        if line.startswith("/"):
            return line
        if not line:
            return candidates[0]
        if line.isdigit() and 1 <= int(line) <= len(candidates):
            return candidates[int(line) - 1]
        write(f"pick a number from 1 to {len(candidates)}, or Enter for the first")
    return None


def run_chat(retriever: Retriever, lines: Iterator[str], write: Callable[[str], None], k: int = 5) -> int:
    """Chat until ``/quit`` or the end of ``lines``; ``write`` shows each message. Returns 0."""
    conversation = retriever.new_conversation()
    write(HELP)
    pending: str | None = None
    while (line := pending if pending is not None else next(lines, None)) is not None:
        pending, line = None, line.strip()
        if line.startswith("/"):
            conversation = _command(line, conversation, retriever, write)
            if conversation is None:
                break
            continue
        if not line:
            continue
        conversation.add(line, USER)
        selection = retriever.select_conversations([conversation], k)[0]
        write(format_selection(selection))
        picked = _pick(lines, selection.candidates, write)
        if picked is None:
            break
        if isinstance(picked, str):
            pending = picked
            continue
        conversation.add(picked.text, BOT)
        write(f"bot: {picked.text}")
    return 0
