"""The HTTP API's bodies and responses as pydantic models, and the limits they enforce.

Every route declares its request and response model here, so ``/openapi.json`` states exactly what is
accepted and returned; a body outside these limits is refused with a 4xx before any work.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_TURNS = 50
MAX_UTTERANCE_CHARS = 2000
MAX_K = 100
DEFAULT_K = 10
MAX_BODY_BYTES = 64 * 1024
ROLE_SPEAKERS = {"user": 0, "bot": 1}  # the speaker numbers the HDR models were trained with


def _utterance(text: str) -> str:
    """Refuse blank text and lone surrogates (valid JSON escapes, but no UTF-8: the tokenizer and SQLite would
    fail on them)."""
    if not text.strip():
        raise ValueError("text must contain something other than white space")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"text is not valid Unicode at position {err.start}") from None
    return text


# "Something other than white space" in every regex dialect that reads the pattern (Python, Rust, ECMA-262):
# they disagree on \x1c-\x1f and \x85, which Python's str.strip() removes.
VISIBLE = r"[^\s\x1c-\x1f\x85]"
Utterance = Annotated[
    str, Field(min_length=1, max_length=MAX_UTTERANCE_CHARS, pattern=VISIBLE), AfterValidator(_utterance)
]
TopK = Annotated[int, Field(ge=1, le=MAX_K, description="how many candidates to return")]
Role = Literal["user", "bot"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Strict):
    """A stateless search: the whole context, oldest turn first."""

    turns: list[Utterance] = Field(min_length=1, max_length=MAX_TURNS, description="the context, oldest first")
    k: TopK = DEFAULT_K


class TurnRequest(_Strict):
    """One new utterance for a session; the response holds candidates for the reply after it."""

    text: Utterance
    role: Role = "user"
    k: TopK = DEFAULT_K


class Candidate(BaseModel):
    """One response of the pool; higher scores are better."""

    id: int
    text: str
    score: float


class Timings(BaseModel):
    """Milliseconds spent per stage of the selection (a micro-batch shares its stages' times)."""

    encode: float
    aggregate: float
    search: float
    rerank: float
    total: float = Field(description="the whole request, as the server saw it")


class SearchResponse(BaseModel):
    candidates: list[Candidate]
    timings_ms: Timings


class TurnOut(BaseModel):
    index: int = Field(ge=0)
    role: Role
    text: str


class TurnResponse(BaseModel):
    turn: TurnOut = Field(description="the turn as committed, before this response was sent")
    candidates: list[Candidate]
    timings_ms: Timings


class SessionOut(BaseModel):
    id: str
    turns: list[TurnOut]


class Limits(BaseModel):
    max_turns: int = MAX_TURNS
    max_utterance_chars: int = MAX_UTTERANCE_CHARS
    max_k: int = MAX_K
    max_body_bytes: int = MAX_BODY_BYTES
    session_ttl_seconds: float
    max_sessions: int
    batch_window_ms: float
    max_batch: int


class IndexFacts(BaseModel):
    """What the demo page shows about the index."""

    model_kind: str
    n_bits: int | None
    pool_size: int
    bytes_per_response: float | None
    is_hdr: bool


class InfoResponse(BaseModel):
    index: IndexFacts
    manifest: dict[str, Any] = Field(description="the bundle's manifest as saved")
    limits: Limits
    version: str


class Status(BaseModel):
    status: str


class ErrorBody(BaseModel):
    """Every 4xx and 503: a reason a person can read (``errors``: the fields at fault, for a 422)."""

    detail: str
    errors: list[dict[str, Any]] | None = None


ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 422, 503)}
