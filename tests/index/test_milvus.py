"""``MilvusBinaryIndex`` against a real Milvus 2.3 standalone server (started here, data in a temporary directory).

Checks: the same top-k as ``BinaryFlatIndex`` on codes of the real encoder (ties aware), BIN_IVF_FLAT probing every
list equals exact search (and probing one list does not), the collection survives a server restart, one-line
errors for an unreachable server and for a collection of another dimension or metric, and ``index build
--backend milvus`` + ``search`` + ``index add`` through the command line give what the faiss bundle gives.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashbert.codes import MISSING_DISTANCE, MISSING_ID, binarize, pack_codes
from hashbert.data import read_rerank_groups
from hashbert.index import BinaryFlatIndex, load_index
from hashbert.index.milvus_local import LocalMilvus, free_port, missing_server_reason

if reason := missing_server_reason():
    pytest.skip(reason, allow_module_level=True)

from hashbert.index.milvus import MilvusBinaryIndex  # noqa: E402 (needs pymilvus)
from hashbert.index.milvus_client import recreate_collection  # noqa: E402

K = 10
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    """One server for the module; ``test_collection_survives_a_restart`` stops and restarts it."""
    server = LocalMilvus(tmp_path_factory.mktemp("milvus") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def real_codes(_base_dual_encoder, small_corpus) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(db (n, 48), queries (30, 48)) 384-bit codes: signs of the real encoder's response and context vectors."""
    import torch

    torch.set_num_threads(1)
    responses = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()[:400]
    contexts = [g.context for g in read_rerank_groups(small_corpus / "test.txt")[:30]]
    db = pack_codes(binarize(_base_dual_encoder.encode_responses(responses)))
    queries = pack_codes(binarize(_base_dual_encoder.encode_contexts(contexts)))
    return db, queries, responses


def _exact(db: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = BinaryFlatIndex(db.shape[1] * 8, threads=1)
    index.add(db)
    return index.search(queries, k)


def test_flat_equals_binary_flat_index_on_real_codes(milvus, real_codes, assert_same_topk):
    db, queries, responses = real_codes
    index = MilvusBinaryIndex(384, milvus.uri, "real_flat")
    index.add(db[:250], texts=responses[:250])
    index.add(db[250:], texts=responses[250:])  # ids continue: 250..399
    index.flush()
    assert len(index) == len(db) and index.nbytes == db.nbytes and index.index_type == "BIN_FLAT"
    got = index.search(queries, K)
    assert_same_topk(_exact(db, queries, K), got, queries, db)
    texts = index.texts_of(got[1])
    assert texts[0] == [responses[i] for i in got[1][0]]
    np.testing.assert_array_equal(index.codes, db)
    distances, ids = index.search(queries[:2], len(db) + 3)  # more than the rows: padded like faiss
    assert (ids[:, -3:] == MISSING_ID).all() and (distances[:, -3:] == MISSING_DISTANCE).all()
    assert sorted(ids[0, :-3].tolist()) == list(range(len(db)))


def test_ivf_probing_every_list_is_exact(milvus, codes_256, assert_same_topk):
    db, queries = codes_256
    index = MilvusBinaryIndex(256, milvus.uri, "structured_ivf", index_type="BIN_IVF_FLAT", nlist=16, nprobe=16)
    index.add(db)
    index.flush()
    index.wait_for_index()
    assert index.index_type == "BIN_IVF_FLAT"
    exact = _exact(db, queries, K)
    assert_same_topk(exact, index.search(queries, K), queries, db)
    index.nprobe = 1  # one list of 16: the index is really inverted, so some true neighbours are missed
    approximate = index.search(queries, K)
    assert (approximate[0] != exact[0]).any()


def test_collection_survives_a_restart(milvus, real_codes):
    db, queries, responses = real_codes
    before = MilvusBinaryIndex(None, milvus.uri, "real_flat").search(queries, K)
    milvus.stop()
    milvus.start()
    # n_bits read from the collection; a restarted server reloads it from disk first, which took over the default
    # 10 s once on the 2-core CI box ("wait for loading collection timeout")
    index = MilvusBinaryIndex(None, milvus.uri, "real_flat", timeout=60)
    assert index.n_bits == 384 and len(index) == len(db)
    after = index.search(queries, K)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert index.texts_of(after[1][:1, :3])[0] == [responses[i] for i in after[1][0, :3]]


def test_unreachable_server_is_a_one_line_error():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match=f"^cannot reach Milvus at {uri}: ") as caught:
        MilvusBinaryIndex(64, uri, "anything", timeout=2)
    assert "\n" not in str(caught.value)


def test_dimension_metric_and_foreign_collections_are_refused(milvus, real_codes):
    MilvusBinaryIndex(384, milvus.uri, "real_flat")  # exists from the first test
    with pytest.raises(ValueError, match="'real_flat' holds 384-bit codes, not 256-bit ones"):
        MilvusBinaryIndex(256, milvus.uri, "real_flat")
    from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections

    connections.connect(alias="raw", uri=milvus.uri)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("code", DataType.BINARY_VECTOR, dim=64),
        FieldSchema("text", DataType.VARCHAR, max_length=100),
    ]
    jaccard = Collection("jaccard", CollectionSchema(fields, description="someone else's"), using="raw")
    jaccard.create_index("code", {"index_type": "BIN_FLAT", "metric_type": "JACCARD", "params": {}})
    with pytest.raises(ValueError, match="'jaccard' is indexed with metric 'JACCARD', expected 'HAMMING'"):
        MilvusBinaryIndex(64, milvus.uri, "jaccard")
    with pytest.raises(ValueError, match="'jaccard' was not created by hashbert; refusing to drop it"):
        recreate_collection(milvus.uri, "jaccard")
    connections.disconnect("raw")


@pytest.fixture(scope="module")
def hash_model(_base_dual_encoder, tmp_path_factory):
    """A 64-bit Hash-BERT on the real encoder (untrained heads: real codes, no training time)."""
    import torch

    from hashbert.config import HashBertConfig, HashConfig
    from hashbert.models.hashing.hash_bert import HashBert, referencing
    from hashbert.models.hashing.tower_heads import HashHeads

    torch.manual_seed(0)
    work = tmp_path_factory.mktemp("milvus-hash")
    hash_config = HashConfig(n_bits=64, hidden=64)
    heads = HashHeads(hash_config, _base_dual_encoder.dim, decoders=True)
    config = HashBertConfig(hash=hash_config, in_dim=_base_dual_encoder.dim)
    config = referencing(config, _base_dual_encoder.save(work / "dual"))
    return HashBert(config, _base_dual_encoder, heads).save(work / "model")


def test_cli_build_search_and_add_with_milvus_backend(milvus, hash_model, small_corpus, tmp_path, capsys):
    from hashbert.cli import main

    lines = (small_corpus / "responses.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "first.txt").write_text("\n".join(lines[:60]) + "\n", encoding="utf-8")
    (tmp_path / "more.txt").write_text("\n".join(lines[60:80]) + "\n", encoding="utf-8")
    build = ["index", "build", "--model", str(hash_model), "--responses", str(tmp_path / "first.txt"), "--no-progress"]
    store = ["--backend", "milvus", "--milvus-uri", milvus.uri, "--collection", "cli_bundle"]
    assert main([*build, "--out", str(tmp_path / "faiss")]) == 0
    assert main([*build, "--out", str(tmp_path / "milvus"), *store]) == 0
    assert "60 responses, hamming_codes_rerank" in capsys.readouterr().out
    assert main(["index", "info", str(tmp_path / "milvus")]) == 0
    info = capsys.readouterr().out
    assert '"index_backend": "milvus"' in info and '"milvus_collection": "cli_bundle"' in info

    def search(bundle: str) -> list[str]:
        assert main(["search", "--bundle", str(tmp_path / bundle), "--k", "5", "hi, how are you?", "tired."]) == 0
        return capsys.readouterr().out.splitlines()[:5]  # the candidates; the timings line differs

    milvus_top, faiss_top = search("milvus"), search("faiss")
    assert milvus_top == faiss_top and len(faiss_top) == 5
    more = ["index", "add", str(tmp_path / "milvus"), "--responses", str(tmp_path / "more.txt"), "--no-progress"]
    assert main(more) == 0 and "80 responses (revision 2)" in capsys.readouterr().out
    index = load_index(tmp_path / "milvus" / "index")  # reconnects to the collection the header names
    assert len(index) == 80 and index.texts_of(np.arange(60, 80)[None])[0] == lines[60:80]
    down = ["--backend", "milvus", "--milvus-uri", f"http://127.0.0.1:{free_port()}", "--collection", "x"]
    assert main([*build, "--out", str(tmp_path / "down"), *down]) == 2
    assert capsys.readouterr().err.startswith("error: cannot reach Milvus at")
