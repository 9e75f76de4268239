"""``hashbert serve`` killed with SIGKILL and started again on the same sessions database: every acknowledged
turn is there, and the next turn's candidates equal those of an app that never died."""

from __future__ import annotations

import signal

import httpx
import pytest
from fastapi.testclient import TestClient

from hashbert.config.serving import ServeConfig
from hashbert.serving.app import create_app

DIALOGUES = [
    [("hey, did you watch the game last night?", "user"), ("no, I missed it. who won?", "bot"),
     ("the home team, in overtime", "user")],
    [("I am thinking of getting a dog", "user"), ("what kind of dog?", "bot")],
]
NEXT = [("that sounds exciting", "bot"), ("maybe a small one, my flat is tiny", "user")]


def _add(http, url: str, sid: str, text: str, role: str) -> dict:
    response = http.post(f"{url}/v1/sessions/{sid}/turns", json={"text": text, "role": role, "k": 10})
    assert response.status_code == 200, response.text
    return response.json()


def test_sigkill_then_restart_keeps_every_acknowledged_turn_and_selects_the_same(
    served_bundle, served_retriever, serve_process, tmp_path
):
    database, log = tmp_path / "sessions.sqlite", tmp_path / "serve.log"
    process, url = serve_process(database, log)
    try:
        sids, acknowledged = [], []
        for dialogue in DIALOGUES:
            sid = httpx.post(f"{url}/v1/sessions").json()["id"]
            turns = [_add(httpx, url, sid, text, role)["turn"] for text, role in dialogue]
            sids.append(sid)
            acknowledged.append(turns)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    process, url = serve_process(database, log)
    try:
        for sid, turns in zip(sids, acknowledged, strict=True):
            assert httpx.get(f"{url}/v1/sessions/{sid}").json() == {"id": sid, "turns": turns}
        after_restart = [_add(httpx, url, sid, *turn) for sid, turn in zip(sids, NEXT, strict=True)]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    config = ServeConfig(sessions_db=str(tmp_path / "reference.sqlite"))
    with TestClient(create_app(served_bundle, config, retriever=served_retriever)) as never_died:
        for dialogue, next_turn, answer in zip(DIALOGUES, NEXT, after_restart, strict=True):
            sid = never_died.post("/v1/sessions").json()["id"]
            for text, role in dialogue:
                _add(never_died, "", sid, text, role)
            expected = _add(never_died, "", sid, *next_turn)
            assert answer["turn"] == expected["turn"]
            assert [c["id"] for c in answer["candidates"]] == [c["id"] for c in expected["candidates"]]
            assert [c["score"] for c in answer["candidates"]] == pytest.approx(
                [c["score"] for c in expected["candidates"]], abs=1e-4
            )
