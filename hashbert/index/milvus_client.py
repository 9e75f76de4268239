"""The Milvus client calls that are not an index: import pymilvus, connect with a one-line error, drop a
collection hashbert created. Needs ``pymilvus>=2.3,<2.4`` (``pip install 'hashbert[milvus]'``)."""

from __future__ import annotations

import logging
import os
import uuid
import warnings

logger = logging.getLogger(__name__)

TOKEN_ENV = "HASHBERT_MILVUS_TOKEN"
MARK = "hashbert binary index"  # the collection description: what hashbert may drop and recreate


def _pymilvus():
    try:
        with warnings.catch_warnings():  # pymilvus 2.3 imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            import pymilvus
    except ImportError as err:
        raise ImportError("the Milvus backend needs pymilvus: pip install 'hashbert[milvus]'") from err
    return pymilvus


def _one_line(err: Exception) -> str:
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())


def connect(uri: str, token: str | None = None, timeout: float = 10.0) -> str:
    """Open a pymilvus connection to ``uri`` (token default ``$HASHBERT_MILVUS_TOKEN``); return its alias.

    Raises:
        ValueError: the server cannot be reached within ``timeout`` seconds (one line, with the reason).
    """
    pymilvus = _pymilvus()
    alias = f"hashbert-{uuid.uuid4().hex}"
    token = os.environ.get(TOKEN_ENV, "") if token is None else token
    try:
        pymilvus.connections.connect(alias=alias, uri=uri, token=token, timeout=timeout)
    except Exception as err:  # MilvusException, grpc errors, a malformed uri: all one line for the user
        raise ValueError(f"cannot reach Milvus at {uri}: {_one_line(err)}") from err
    return alias


def recreate_collection(uri: str, collection: str, token: str | None = None, timeout: float = 10.0) -> None:
    """Drop ``collection`` if hashbert created it (its description says so); refuse any other collection."""
    pymilvus = _pymilvus()
    alias = connect(uri, token, timeout)
    try:
        if not pymilvus.utility.has_collection(collection, using=alias, timeout=timeout):
            return
        existing = pymilvus.Collection(collection, using=alias)
        if existing.schema.description != MARK:
            raise ValueError(f"Milvus collection {collection!r} was not created by hashbert; refusing to drop it")
        existing.drop(timeout=timeout)
        logger.info("dropped the earlier Milvus collection %r", collection)
    finally:
        pymilvus.connections.disconnect(alias)
