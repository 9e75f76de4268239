"""Sixteen clients adding turns to one session at once, over real HTTP: no turn is lost, none is applied twice,
and each client's turns keep its order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

CLIENTS, TURNS = 16, 3


def test_sixteen_clients_on_one_session_lose_nothing_and_keep_each_order(serve_app):
    url = serve_app(batch_window_ms=5, max_batch=16)
    sid = httpx.post(f"{url}/v1/sessions").json()["id"]

    def client(number: int) -> list[dict]:
        with httpx.Client(base_url=url, timeout=60) as http:
            answers = []
            for turn in range(TURNS):
                body = {"text": f"client {number} says line {turn}", "role": "user" if turn % 2 == 0 else "bot",
                        "k": 3}
                response = http.post(f"/v1/sessions/{sid}/turns", json=body)
                assert response.status_code == 200, response.text
                answers.append(response.json())
            return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [answer for answers in pool.map(client, range(CLIENTS)) for answer in answers]

    stored = httpx.get(f"{url}/v1/sessions/{sid}").json()["turns"]
    assert [turn["index"] for turn in stored] == list(range(CLIENTS * TURNS))
    assert sorted(answer["turn"]["index"] for answer in answers) == list(range(CLIENTS * TURNS))
    by_index = {turn["index"]: turn for turn in stored}
    for answer in answers:  # what each client was told is what was stored at that index
        assert by_index[answer["turn"]["index"]] == answer["turn"]
        assert len(answer["candidates"]) == 3
    for number in range(CLIENTS):
        mine = [turn["text"] for turn in stored if turn["text"].startswith(f"client {number} says")]
        assert mine == [f"client {number} says line {turn}" for turn in range(TURNS)]
