"""Schemathesis against the app's own OpenAPI schema: every generated request, valid (positive) or not
(negative), gets a response that conforms to the schema, and none is a 5xx.

A real uvicorn on a free 127.0.0.1 port serves the app over the shared bundle. Half of the requests that name a
session name a live one (the rest keep the generated id: a 404), so turns are really added and answered.
"""

from __future__ import annotations

import itertools

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from hashbert.config.serving import ServeConfig
from hashbert.serving.app import create_app

from .conftest import running_server

EXAMPLES = 130  # per operation and mode (8 with inputs: 1,040 requests); those without inputs need one
MIN_REQUESTS = 1000
SENT: list[tuple[str, int]] = []  # (operation, status) of every request sent, for the count check at the end

# The schema needs no model: an app that is never started describes itself.
SCHEMA = schemathesis.openapi.from_dict(create_app("unused-bundle", ServeConfig()).openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
CASES = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label, op in OPERATIONS.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or op.body or op.path_parameters or op.query
]


@pytest.fixture(scope="module")
def live_url(served_bundle, served_retriever, tmp_path_factory):
    config = ServeConfig(sessions_db=str(tmp_path_factory.mktemp("schema") / "sessions.sqlite"))
    with running_server(create_app(served_bundle, config, retriever=served_retriever)) as url:
        yield url


@pytest.fixture(scope="module")
def fresh_session(live_url):
    """``fresh_session() -> id`` of a new live session (a generated DELETE may end any one)."""
    return lambda: httpx.post(f"{live_url}/v1/sessions").json()["id"]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_generated_request_gets_a_conforming_non_5xx_answer(label, mode, live_url, fresh_session):
    flip = itertools.count()

    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        if "session_id" in (case.path_parameters or {}) and next(flip) % 2 == 0:
            case.path_parameters["session_id"] = fresh_session()
        response = case.call(base_url=live_url)
        SENT.append((label, response.status_code))
        assert response.status_code < 500, response.text
        case.validate_response(response)

    check()


def test_enough_requests_were_generated():
    if len(SENT) < MIN_REQUESTS and len(SENT) < 10:
        pytest.skip("counts the generated tests' requests: run it with them")
    statuses = sorted({status for _, status in SENT})
    per_operation = {label: sum(1 for sent, _ in SENT if sent == label) for label in OPERATIONS}
    assert len(SENT) >= MIN_REQUESTS, f"{len(SENT)} requests, statuses {statuses}, {per_operation}"
    print(f"\nschemathesis: {len(SENT)} requests, statuses {statuses}, {per_operation}")
