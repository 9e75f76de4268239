"""The run configs of the bundle commands (``hashbert index build|add|info``, ``search``, ``chat``).

Kept beside ``runs`` (one run config per command, the same conventions) so that neither module outgrows the
size limit; ``hashbert.cli`` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashbert.config.fields import Config, embedded, option, required
from hashbert.config.inference import InferenceConfig
from hashbert.config.runs import OutputConfig
from hashbert.config.serving import IndexStoreConfig


@dataclass(frozen=True)
class RetrievalConfig(Config):
    """How a bundle is searched."""

    k: int = option(5, "candidates shown", minimum=1)
    rerank_candidates: int = option(1000, "hashing models: Hamming candidates re-ranked (0: Hamming order)", minimum=0)
    threads: int = option(0, "faiss search threads (0: every core)", minimum=0)
    inference: InferenceConfig = embedded(InferenceConfig)


@dataclass(frozen=True)
class IndexBuildRun(Config):
    """Build a bundle: a model, the index of a response pool, checksums, in one directory.

    Encode every line of --responses (ids are line numbers from 0) with --model (dual_encoder, hash_bert, hdr or
    hdr_hash) and write the bundle --out atomically: manifest.json, model/ (a self-contained copy: a referenced
    DR-BERT or HDR model is copied inside it), index/ (binary codes of hashing models, else float vectors), with
    --float-vectors also vectors.npy (float response vectors for the re-rank), and checksums.json. Chunks of
    --chunk-size responses are saved in <out>.build: rerun the same command to resume an interrupted build.
    With --backend milvus (hashing models) the codes and texts go to --collection on --milvus-uri instead, and
    index/ only names them; search, chat and serve then query that server.
    """

    output: OutputConfig
    model: str = required("saved model directory (e.g. runs/hb-256/model)")
    responses: str = required("responses file, one per line (e.g. runs/chitchat/responses.txt)")
    float_vectors: bool = option(False, "hashing models: also store the float response vectors for the re-rank")
    chunk_size: int = option(2048, "responses per saved chunk (what an interrupted build resumes from)", minimum=1)
    progress: bool = option(True, "show a progress bar")
    inference: InferenceConfig = embedded(InferenceConfig)
    store: IndexStoreConfig = embedded(IndexStoreConfig)


@dataclass(frozen=True)
class IndexAddRun(Config):
    """Append the responses of a file to a bundle (only they are encoded; ids continue).

    The bundle is rewritten atomically as a new version (its manifest's revision + 1); readers see the old or the
    new bundle whole.
    """

    bundle: str = required("bundle directory", positional=True)
    responses: str = required("file of the new responses, one per line")
    chunk_size: int = option(2048, "responses per saved chunk (what an interrupted add resumes from)", minimum=1)
    progress: bool = option(True, "show a progress bar")


@dataclass(frozen=True)
class IndexInfoRun(Config):
    """Print a bundle's manifest."""

    bundle: str = required("bundle directory", positional=True)


@dataclass(frozen=True)
class SearchRun(Config):
    """Print the top-k responses of a bundle for a context, with scores and the milliseconds of each stage.

    The context is the TURNS given, oldest first (quote each turn). Stages: encode (text -> vectors and codes),
    aggregate (HDR), search (the index), rerank (hashing models: the --rerank-candidates Hamming candidates).
    """

    bundle: str = required("bundle directory ('hashbert index build' writes one)")
    turns: tuple[str, ...] = required("the context's utterances, oldest first", positional=True)
    retrieval: RetrievalConfig = embedded(RetrievalConfig)


@dataclass(frozen=True)
class ChatRun(Config):
    """Chat with a bundle: each input line is a user turn, you pick the bot's reply among the top-k.

    Enter picks the first candidate, a number another. Commands: /reset, /save FILE (the turns and their cached
    states, JSON), /load FILE, /quit; end of input ends the chat. HDR models encode only the newest utterance per
    turn; other models re-encode the history. Reads stdin, so it also runs on piped input.
    """

    bundle: str = required("bundle directory ('hashbert index build' writes one)")
    retrieval: RetrievalConfig = embedded(RetrievalConfig)
