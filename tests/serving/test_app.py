"""The HTTP service in process (TestClient over the real bundle): routes, sessions, readiness and batching."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from hashbert.config.serving import ServeConfig
from hashbert.serving.app import create_app

ROLES = ["user", "bot", "user"]
CONTEXT = ["hi there, how are you doing today?", "pretty good, just got back from a run", "nice! how far?"]


@pytest.fixture()
def make_client(served_bundle, served_retriever, tmp_path):
    """``make_client(**settings) -> TestClient`` of an app on the shared retriever, sessions in tmp_path."""
    clients = []

    def make(**settings) -> TestClient:
        config = ServeConfig(sessions_db=str(tmp_path / f"sessions-{len(clients)}.sqlite"), **settings)
        client = TestClient(create_app(served_bundle, config, retriever=served_retriever))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client):
    return make_client()


def _ids(candidates):
    return [candidate["id"] for candidate in candidates]


def test_health_readiness_and_the_demo_page(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and client.get("/static/app.js").status_code == 200


def test_search_returns_what_the_retriever_selects(client, served_retriever):
    response = client.post("/v1/search", json={"turns": CONTEXT, "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = served_retriever.select(CONTEXT, 5)
    assert _ids(body["candidates"]) == [candidate.id for candidate in expected.candidates]
    assert body["candidates"][0]["text"] == expected.candidates[0].text
    assert set(body["timings_ms"]) == {"encode", "aggregate", "search", "rerank", "total"}
    assert len(client.post("/v1/search", json={"turns": CONTEXT}).json()["candidates"]) == 10  # default k


def test_session_turns_are_stored_in_order_and_select_like_a_live_conversation(client, served_retriever):
    created = client.post("/v1/sessions")
    assert created.status_code == 201 and created.json()["turns"] == []
    sid = created.json()["id"]
    conversation = served_retriever.new_conversation()
    for index, (text, role) in enumerate(zip(CONTEXT, ROLES, strict=True)):
        response = client.post(f"/v1/sessions/{sid}/turns", json={"text": text, "role": role, "k": 7})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["turn"] == {"index": index, "role": role, "text": text}
        conversation.add(text, 0 if role == "user" else 1)
        expected = served_retriever.select_conversations([conversation], 7)[0]
        assert _ids(body["candidates"]) == [candidate.id for candidate in expected.candidates]
        assert body["candidates"][0]["score"] == pytest.approx(expected.candidates[0].score, abs=1e-4)
    stored = client.get(f"/v1/sessions/{sid}").json()
    pairs = enumerate(zip(CONTEXT, ROLES, strict=True))
    turns = [{"index": i, "role": role, "text": text} for i, (text, role) in pairs]
    assert stored == {"id": sid, "turns": turns}
    assert client.delete(f"/v1/sessions/{sid}").status_code == 204
    assert client.get(f"/v1/sessions/{sid}").status_code == 404


def test_a_turn_restored_from_stored_states_selects_what_the_cached_conversation_does(make_client):
    first, cold = make_client(), make_client(conversation_cache=0)
    sids = [c.post("/v1/sessions").json()["id"] for c in (first, cold)]
    answers = []
    for c, sid in zip((first, cold), sids, strict=True):
        for text in CONTEXT:
            answer = c.post(f"/v1/sessions/{sid}/turns", json={"text": text, "k": 20}).json()
        answers.append(answer["candidates"])
    assert _ids(answers[0]) == _ids(answers[1])
    runtime = cold.app.state.runtime
    assert runtime.cache.hits == 0 and runtime.cache.misses == len(CONTEXT)
    assert first.app.state.runtime.cache.hits == len(CONTEXT) - 1  # every turn after the first


def test_info_reports_the_index_and_the_limits(client, served_retriever):
    info = client.get("/v1/info").json()
    manifest = served_retriever.manifest
    assert info["index"]["pool_size"] == manifest.pool_size and info["index"]["model_kind"] == manifest.model_kind
    assert info["manifest"]["model_fingerprint"] == manifest.model_fingerprint
    assert info["limits"]["max_k"] == 100 and info["limits"]["max_turns"] == 50
    assert info["index"]["is_hdr"] is True


def test_readyz_is_503_until_the_model_loads_and_says_why_it_did_not(tmp_path):
    config = ServeConfig(sessions_db=str(tmp_path / "s.sqlite"))
    with TestClient(create_app(tmp_path / "no-bundle", config)) as client:
        for _ in range(200):
            if client.app.state.runtime.load_error:
                break
            time.sleep(0.01)
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "failed to load" in ready.json()["detail"]
        assert client.post("/v1/search", json={"turns": ["hi"]}).status_code == 503


def test_concurrent_searches_are_encoded_together_and_answered_separately(make_client, served_retriever):
    client = make_client(batch_window_ms=200, max_batch=8)
    contexts = [[f"do you like {thing}?"] for thing in ("cats", "dogs", "pizza", "running", "rain", "music")]

    with ThreadPoolExecutor(len(contexts)) as pool:  # the TestClient's portal takes requests from any thread
        responses = list(pool.map(
            lambda i: client.post("/v1/search", json={"turns": contexts[i], "k": 3 + i}), range(len(contexts))
        ))
    assert max(client.app.state.runtime.batcher.batch_sizes) > 1
    for i, (turns, response) in enumerate(zip(contexts, responses, strict=True)):
        expected = served_retriever.select(turns, 3 + i)
        assert _ids(response.json()["candidates"]) == [candidate.id for candidate in expected.candidates]


def test_metrics_name_every_family(client):
    sid = client.post("/v1/sessions").json()["id"]
    client.post(f"/v1/sessions/{sid}/turns", json={"text": "hello"})
    client.post("/v1/search", json={"turns": ["hello"]})
    text = client.get("/metrics").text
    for family in ("hashbert_http_requests_total", "hashbert_stage_latency_ms_bucket", "hashbert_live_sessions",
                   "hashbert_index_responses", "hashbert_index_bytes", "hashbert_batch_size"):
        assert family in text
    assert 'route="/v1/sessions/{session_id}/turns"' in text and sid not in text
    for stage in ("encode", "aggregate", "search", "rerank", "total"):
        assert f'stage="{stage}"' in text
