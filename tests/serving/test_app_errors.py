"""Every refusal of the HTTP service is a 4xx with a JSON reason, never a 500; the optional API key."""

from __future__ import annotations

import hmac

import httpx
import pytest
from fastapi.testclient import TestClient

from hashbert.config.serving import ServeConfig
from hashbert.serving.app import create_app


@pytest.fixture()
def client(served_bundle, served_retriever, tmp_path):
    config = ServeConfig(sessions_db=str(tmp_path / "sessions.sqlite"))
    with TestClient(create_app(served_bundle, config, retriever=served_retriever)) as client:
        yield client


def _refused(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    for word in words:
        assert word in body["detail"]
    return body


BAD_SEARCHES = {
    "no turns": {"turns": []},
    "51 turns": {"turns": ["hi"] * 51},
    "a 2001-char turn": {"turns": ["x" * 2001]},
    "an empty turn": {"turns": [""]},
    "a blank turn": {"turns": ["   \n"]},
    "k 0": {"turns": ["hi"], "k": 0},
    "k 101": {"turns": ["hi"], "k": 101},
    "k a string": {"turns": ["hi"], "k": "ten"},
    "k a float": {"turns": ["hi"], "k": 2.5},
    "turns a string": {"turns": "hi"},
    "a number for a turn": {"turns": [3]},
    "no turns field": {"k": 3},
    "an unknown field": {"turns": ["hi"], "topk": 3},
    "a list body": [["hi"]],
}


@pytest.mark.parametrize("body", BAD_SEARCHES.values(), ids=BAD_SEARCHES.keys())
def test_bad_searches_are_422_with_the_field_named(client, body):
    found = _refused(client.post("/v1/search", json=body), 422, "invalid request")
    assert found["errors"] and all("loc" in error for error in found["errors"])


def test_malformed_json_and_lone_surrogates_are_refused(client):
    json_type = {"content-type": "application/json"}
    _refused(client.post("/v1/search", content=b'{"turns": ["\\ud800 hi"]}', headers=json_type), 422)
    response = client.post("/v1/search", content=b'{"turns": ["hi"', headers={"content-type": "application/json"})
    _refused(response, 422)
    _refused(client.post("/v1/search", content=b"\xff\xfe", headers={"content-type": "application/json"}), 422)


def test_a_body_over_64_kb_is_413_whether_declared_or_streamed(client):
    big = {"turns": ["x" * 1900] * 40}  # ~76 kB, each turn within the limits
    _refused(client.post("/v1/search", json=big), 413, "bytes")

    def chunks():  # no Content-Length: the limit counts what arrives
        for _ in range(40):
            yield b"x" * 2000

    _refused(client.post("/v1/search", content=chunks(), headers={"content-type": "application/json"}), 413)


def test_unknown_or_deleted_sessions_are_404(client):
    _refused(client.get("/v1/sessions/nope"), 404, "unknown or expired session")
    _refused(client.post("/v1/sessions/nope/turns", json={"text": "hi"}), 404)
    _refused(client.delete("/v1/sessions/nope"), 404)
    sid = client.post("/v1/sessions").json()["id"]
    assert client.delete(f"/v1/sessions/{sid}").status_code == 204
    _refused(client.post(f"/v1/sessions/{sid}/turns", json={"text": "hi"}), 404)


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "x" * 2001}, {"text": "hi", "role": "system"},
                                  {"text": "hi", "k": 500}, {"role": "user"}, {"text": "\t"}])
def test_bad_turns_are_422_and_store_nothing(client, body):
    sid = client.post("/v1/sessions").json()["id"]
    _refused(client.post(f"/v1/sessions/{sid}/turns", json=body), 422)
    assert client.get(f"/v1/sessions/{sid}").json()["turns"] == []


def test_an_expired_session_is_404(served_bundle, served_retriever, tmp_path):
    config = ServeConfig(sessions_db=str(tmp_path / "s.sqlite"), session_ttl=1)
    with TestClient(create_app(served_bundle, config, retriever=served_retriever)) as client:
        sid = client.post("/v1/sessions").json()["id"]
        client.app.state.runtime.store._clock = lambda: 1e12  # far in the future
        _refused(client.get(f"/v1/sessions/{sid}"), 404, "expired")


def test_unknown_routes_and_methods_are_json_4xx(client):
    _refused(client.get("/v2/nothing"), 404)
    _refused(client.put("/v1/search", json={"turns": ["hi"]}), 405)


def test_the_api_key_guards_v1_and_metrics_but_not_health_or_the_page(served_bundle, served_retriever, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-key\n", encoding="utf-8")
    config = ServeConfig(sessions_db=str(tmp_path / "s.sqlite"), api_key_file=str(key_file))
    with TestClient(create_app(served_bundle, config, retriever=served_retriever)) as client:
        for path in ("/healthz", "/readyz", "/"):
            assert client.get(path).status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": "s3cret-key "[:-2]}, {"X-API-Key": b"\xe9"}):
            _refused(client.post("/v1/search", json={"turns": ["hi"]}, headers=headers), 401, "API key")
            _refused(client.get("/metrics", headers=headers), 401)
            _refused(client.post("/v1/sessions", headers=headers), 401)
        good = {"X-API-Key": "s3cret-key"}
        assert client.post("/v1/search", json={"turns": ["hi"]}, headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200
        schema = client.get("/openapi.json").json()
        assert "X-API-Key" in str(schema["components"]["securitySchemes"])
    assert hmac.compare_digest(b"a", b"a")  # the comparison the guard uses: constant time over bytes


def test_an_empty_api_key_file_is_refused(served_bundle, tmp_path):
    (tmp_path / "key").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        create_app(served_bundle, ServeConfig(api_key_file=str(tmp_path / "key")))
