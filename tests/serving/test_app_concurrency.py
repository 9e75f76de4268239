"""Sixteen clients adding turns to one session at once, over real HTTP: no turn is lost, none is applied twice,
and each client's turns keep its order; turns of concurrent sessions are encoded in one forward pass and
answered as if each session were alone."""

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


def test_turns_of_concurrent_sessions_are_encoded_together_and_answered_as_alone(serve_app, served_retriever):
    url = serve_app(batch_window_ms=300, max_batch=8)
    rows: list[int] = []
    backbone = served_retriever.towers.encoder.utterance_encoder.backbone
    hook = backbone.register_forward_hook(lambda module, args, kwargs, out: rows.append(len(kwargs["input_ids"])),
                                          with_kwargs=True)
    lines = [[f"do you like {thing}?", f"i {verb} {thing} a lot"] for thing, verb in
             [("cats", "love"), ("rain", "hate"), ("pizza", "eat"), ("music", "play")]]

    def client(turns: list[str]) -> list[list[int]]:
        with httpx.Client(base_url=url, timeout=60) as http:
            sid = http.post("/v1/sessions").json()["id"]
            answers = [http.post(f"/v1/sessions/{sid}/turns", json={"text": text, "k": 4}) for text in turns]
        assert all(answer.status_code == 200 for answer in answers)
        return [[candidate["id"] for candidate in answer.json()["candidates"]] for answer in answers]

    try:
        with ThreadPoolExecutor(len(lines)) as pool:
            got = list(pool.map(client, lines))
    finally:
        hook.remove()
    assert max(rows) > 1  # utterances of different sessions went through one forward pass
    for turns, ids in zip(lines, got, strict=True):
        alone = served_retriever.new_conversation()
        for text, answer in zip(turns, ids, strict=True):
            alone.add(text, 0)
            assert answer == [c.id for c in served_retriever.select_conversations([alone], 4)[0].candidates]
