"""What a deployable index bundle records about itself (``manifest.json``, see ``hashbert.serving.bundle``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hashbert.config.fields import Config, embedded, option, required
from hashbert.config.inference import InferenceConfig

BUNDLE_FORMAT_VERSION = 1
BUNDLE_MODEL_KINDS = ("dual_encoder", "hash_bert", "hdr", "hdr_hash")
BUNDLE_SCORINGS = ("inner_product", "hamming_codes_rerank", "hamming_vectors_rerank")


@dataclass(frozen=True)
class BundleManifest(Config):
    """A bundle's model, index and build facts; written by ``build_bundle`` and ``add_to_bundle``.

    ``scoring`` says how ``Retriever`` searches: ``inner_product`` (a float index of the model's vectors),
    ``hamming_codes_rerank`` (Hamming top-l, re-ranked by the float context hash against the ±1 codes) or
    ``hamming_vectors_rerank`` (Hamming top-l, re-ranked by the float context against ``vectors.npy``).
    """

    model_kind: Literal["dual_encoder", "hash_bert", "hdr", "hdr_hash"] = required("the model's registry type")
    scoring: Literal["inner_product", "hamming_codes_rerank", "hamming_vectors_rerank"] = required(
        "how the retriever searches the index"
    )
    pool_size: int = required("responses in the index (ids 0..pool_size-1, their line order)")
    dim: int = required("dense vector size of the model")
    model_fingerprint: str = required("sha256 of the source model's checksums.json")
    n_bits: int = option(0, "code length of a binary index (0: the index is float)", minimum=0)
    bytes_per_response: float = option(0.0, "index bytes (+ vectors.npy bytes) per response", minimum=0)
    build_seconds: float = option(0.0, "wall-clock seconds spent encoding and writing, all builds and adds", minimum=0)
    hashbert_version: str = option("", "the hashbert version that wrote the bundle")
    float_vectors: bool = option(False, "vectors.npy holds the float response vectors (row i = index position i)")
    revision: int = option(1, "1 for a build, +1 for each add", minimum=1)
    format_version: int = option(BUNDLE_FORMAT_VERSION, "the bundle layout version", minimum=1)
    index_backend: Literal["faiss", "milvus"] = option("faiss", "where the index lives (milvus: index/ names it)")
    milvus_uri: str = option("", "milvus: the server the index lives on")
    milvus_collection: str = option("", "milvus: the collection holding the codes")

    def validate(self) -> None:
        if self.format_version != BUNDLE_FORMAT_VERSION:
            raise ValueError(f"bundle format {self.format_version} is not supported (this hashbert reads 1)")
        if (self.n_bits == 0) != (self.scoring == "inner_product"):
            raise ValueError(f"scoring {self.scoring!r} does not fit n_bits={self.n_bits}")
        if self.float_vectors != (self.scoring == "hamming_vectors_rerank"):
            raise ValueError(f"scoring {self.scoring!r} does not fit float_vectors={self.float_vectors}")

    @property
    def is_binary(self) -> bool:
        """Whether the index holds binary codes (else float vectors)."""
        return self.n_bits > 0


@dataclass(frozen=True)
class IndexStoreConfig(Config):
    """Where ``index build`` puts a hashing model's codes: in the bundle (faiss) or in a Milvus collection."""

    backend: Literal["faiss", "milvus"] = option("faiss", "faiss: index/ in the bundle; milvus: a Milvus collection")
    milvus_uri: str = option("http://127.0.0.1:19530", "milvus: the server (a standalone server or a cluster)")
    collection: str = option("", "milvus: the collection (created; one hashbert made before is replaced)")
    milvus_token: str = option("", "milvus: user:password or API key (default $HASHBERT_MILVUS_TOKEN; never saved)")
    milvus_index: Literal["BIN_FLAT", "BIN_IVF_FLAT"] = option("BIN_FLAT", "milvus: exact or inverted-file index")
    nlist: int = option(1024, "milvus BIN_IVF_FLAT: lists per segment", minimum=1)
    nprobe: int = option(16, "milvus BIN_IVF_FLAT: lists probed per query (saved; search reads it)", minimum=1)

    def validate(self) -> None:
        if self.backend == "milvus" and not self.collection:
            raise ValueError("--backend milvus needs --collection NAME")


@dataclass(frozen=True)
class ServeConfig(Config):
    """How ``hashbert serve`` runs the HTTP service (everything but the bundle it serves)."""

    host: str = option("127.0.0.1", "address to listen on (0.0.0.0: every interface)")
    port: int = option(8000, "TCP port to listen on (0: any free port)", minimum=0, maximum=65535)
    workers: int = option(1, "worker processes (each loads the model; sessions are shared through the database)",
                          minimum=1, maximum=64)
    sessions_db: str = option("sessions.sqlite", "SQLite file of the sessions (created if missing)")
    api_key_file: str = option("", "file holding the API key that /v1 and /metrics require (empty: no key)")
    session_ttl: float = option(86400.0, "seconds a session may stay unused before it expires", minimum=1)
    max_sessions: int = option(100000, "live sessions kept; creating more evicts the least recently used",
                               minimum=1)
    batch_window_ms: float = option(5.0, "how long a request waits for others to be encoded with it",
                                    minimum=0, maximum=1000)
    max_batch: int = option(32, "most requests encoded together in one forward pass", minimum=1, maximum=1024)
    threads: int = option(0, "torch threads of each worker (0: torch's default)", minimum=0)
    conversation_cache: int = option(256, "live conversations kept in memory per worker (0: none)", minimum=0)
    inference: InferenceConfig = embedded(InferenceConfig)
