"""HDR-BERT training: two learning rates in one Trainer, each aggregator's loss falls on a tiny real slice,
and the command line trains, saves and evaluates an HDR model end to end."""

from __future__ import annotations

import json

import pytest
import torch

from hashbert.config import EncoderConfig, HdrConfig, TrainConfig
from hashbert.data import read_training_pairs
from hashbert.models.hdr.model import HdrModel
from hashbert.training.hard_negatives import IndexedPair
from hashbert.training.hdr import HdrTrainer, hdr_loss

SMALL = {"utterance_length": 16, "vectors_per_utterance": 3, "layers": 1, "heads": 4, "ffn_dim": 128}


def _model(dual_encoder, aggregator: str) -> HdrModel:
    config = HdrConfig(
        encoder=EncoderConfig(max_response_length=16, max_context_turns=4), aggregator=aggregator, **SMALL
    )
    torch.manual_seed(0)
    return HdrModel(config, dual_encoder.context_encoder, dual_encoder.response_encoder, dual_encoder.tokenizer)


@pytest.fixture(scope="module")
def pairs(small_corpus):
    return read_training_pairs(small_corpus / "train.txt", max_context_turns=4)[::7][:16]  # several dialogues


def _trainer(model, pairs, out, steps: int) -> HdrTrainer:
    config = TrainConfig(
        batch_size=8, lr=5e-5, max_steps=steps, warmup_ratio=0.0, save_every=0, progress=False, seed=0
    )
    return HdrTrainer(
        model, hdr_loss(model), pairs, model.collate, config, out, dedupe_key=lambda p: p.response, aggregator_lr=1e-3
    )


def test_aggregator_gets_its_own_learning_rate(dual_encoder, pairs, tmp_path):
    model = _model(dual_encoder, "trs")
    trainer = _trainer(model, pairs, tmp_path, steps=1)
    by_lr: dict[float, set[int]] = {}
    for group in trainer.optimizer.param_groups:
        by_lr.setdefault(group["initial_lr"], set()).update(id(p) for p in group["params"])
    assert by_lr[1e-3] == {id(p) for p in model.aggregator.parameters()}
    encoders = (
        {id(p) for p in model.utterance_encoder.parameters()} | {id(p) for p in model.response_encoder.parameters()}
    )
    assert by_lr[5e-5] == encoders


@pytest.mark.slow
@pytest.mark.parametrize("aggregator", ["trs", "trs-mv", "colbert", "gpt-mv"])
def test_each_aggregator_loss_falls_on_real_slice(dual_encoder, pairs, tmp_path, aggregator):
    model = _model(dual_encoder, aggregator)
    loss = hdr_loss(model)
    fixed = model.collate(pairs[:8])

    def batch_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(loss(fixed))

    before = batch_loss()
    _trainer(model, pairs, tmp_path, steps=6).fit()
    after = batch_loss()
    assert after < before - 0.05, (aggregator, before, after)


@pytest.mark.slow
def test_cli_trains_saves_and_evaluates_hdr(small_corpus, tmp_path, capsys):
    from hashbert.cli import main

    run = tmp_path / "hdr"
    small = ["--utterance-length", "16", "--vectors-per-utterance", "3", "--layers", "1", "--heads", "4",
             "--max-response-length", "16", "--max-context-turns", "4"]
    code = main([
        "train", "hdr", "--train", str(small_corpus / "train.txt"), "--valid", str(small_corpus / "valid.txt"),
        "--out", str(run), "--max-train-pairs", "16", "--batch-size", "8", "--max-valid-groups", "5",
        "--aggregator", "colbert", "--no-progress", *small,
    ])
    assert code == 0 and "trained HDR-BERT (colbert): 2 steps on 16 pairs" in capsys.readouterr().out
    assert (run / "model" / "config.json").is_file() and (run / "loss.png").is_file()
    code = main(["train", "hdr-lsh", "--hdr", str(run / "model"), "--bits", "64", "--out", str(tmp_path / "lsh")])
    assert code == 0
    code = main([
        "evaluate", "rerank", "--test", str(small_corpus / "test.txt"), "--model", str(run / "model"),
        "--model", str(tmp_path / "lsh" / "lsh-64"), "--scoring", "symmetric,asymmetric", "--max-groups", "4",
        "--seed-table", "4", "--seed-models", "HDR-BERT-ColBERT", "--no-progress",
    ])
    out = capsys.readouterr().out
    assert code == 0 and "| HDR-BERT-ColBERT (" in out and "HDR-BERT-ColBERT (seed)" in out and "52.30" in out
    assert "HDR-BERT-ColBERT+LSH(64) (" in out and " sym " in out and " asym " in out


@pytest.mark.parametrize("aggregator", ["trs", "trs-mv"])
def test_mined_negatives_reach_the_hdr_loss(dual_encoder, pairs, aggregator):
    """A batch with ``negatives`` (one per context, single- and multi-vector aggregators): same weights and batch,
    one more candidate per context can only raise the loss; a batch without them gives the in-batch loss."""
    model = _model(dual_encoder, aggregator).eval()
    loss, batch = hdr_loss(model), model.collate(pairs[:8])
    with torch.no_grad():
        plain = float(loss(batch))
        hard = float(loss({**batch, "negatives": model.batcher.responses([p.response for p in pairs[8:16]])}))
    assert hard > plain


@pytest.mark.slow
def test_cli_trains_hdr_with_bm25_negatives(small_corpus, tmp_path, capsys):
    from hashbert.cli import main

    args = ["train", "hdr", "--train", str(small_corpus / "train.txt"), "--out", str(tmp_path / "hdr"),
            "--max-train-pairs", "16", "--batch-size", "8", "--no-progress", "--utterance-length", "16",
            "--vectors-per-utterance", "3", "--layers", "1", "--heads", "4", "--max-response-length", "16",
            "--max-context-turns", "4", "--aggregator", "trs-mv"]
    assert main([*args, "--hard-negatives", "bm25", "--hard-per-context", "2"]) == 0
    assert "trained HDR-BERT (trs-mv): 2 steps on 16 pairs" in capsys.readouterr().out
    assert json.loads((tmp_path / "hdr" / "run.json").read_text())["negatives"]["hard_negatives"] == "bm25"
    assert main([*args[:5], str(tmp_path / "other"), *args[6:], "--hard-negatives", "model"]) == 2
    assert "train hdr mines BM25 negatives" in capsys.readouterr().err


def test_distillation_adds_the_teachers_kl_term(dual_encoder, pairs, tmp_path):
    """``TeacherScores`` holds the DR-BERT's vectors of every pair (cached), and the loss gains weight x KL:
    a teacher that ranks each batch's responses alike to HDR adds ~nothing, another ranking adds more."""
    from hashbert.training.teacher import TeacherScores, indexed_collate

    dual_dir = dual_encoder.save(tmp_path / "dual")
    expected = dual_encoder.encode_contexts([pairs[3].context]) @ dual_encoder.encode_responses([pairs[5].response]).T
    model = _model(dual_encoder, "trs").eval()  # after the encode above, which restores the towers' train mode
    args = (str(dual_dir), pairs, {}, {"test": 1}, tmp_path / "cache", 2.0, model.config.temperature, "cpu")
    teacher = TeacherScores(*args)
    assert teacher.contexts.shape == (len(pairs), dual_encoder.dim) and any((tmp_path / "cache").iterdir())
    assert float(teacher.scores(torch.tensor([3, 5]))[0, 1]) == pytest.approx(float(expected[0, 0]), abs=1e-4)
    batch = indexed_collate(lambda items: model.collate([item.pair for item in items]))(
        [IndexedPair(i, pair) for i, pair in enumerate(pairs[:8])])
    with torch.no_grad():
        plain = float(hdr_loss(model)(batch))
        context, _, response, _ = model(**{k: v for k, v in batch.items() if k != "pair_index"})
        teacher.contexts, teacher.responses = context[:, 0], response[:, 0]  # the student's own ranking
        teacher.loss.teacher_temperature = model.config.temperature
        same = float(hdr_loss(model, teacher)(batch))
        teacher.contexts = teacher.contexts.roll(1, 0)
        other = float(hdr_loss(model, teacher)(batch))
    assert same == pytest.approx(plain, abs=1e-4) and other > plain + 0.1


def test_distilled_negatives_join_the_kl_term(dual_encoder, pairs, tmp_path):
    """``--distill-negatives``: the teacher's response tower scores each context's own mined negatives (as its
    cached vectors would), and those columns join the KL term: ~nothing when the teacher ranks them as HDR does,
    more when it ranks them otherwise, where the in-batch-only term cannot tell."""
    from hashbert.training.teacher import TeacherScores, indexed_collate

    dual_dir = dual_encoder.save(tmp_path / "dual")
    texts = [pairs[(i + k) % len(pairs)].response for i in range(8) for k in (3, 5)]  # two negatives a context
    expected = dual_encoder.encode_contexts([pairs[2].context]) @ dual_encoder.encode_responses(texts[4:6]).T
    model = _model(dual_encoder, "trs-mv").eval()  # after the encode above, which restores the towers' train mode
    args = (str(dual_dir), pairs, {}, {"test": 2}, tmp_path / "cache", 2.0, model.config.temperature, "cpu")
    teacher = TeacherScores(*args, progress=False, scores_negatives=True)
    batch = indexed_collate(lambda items: model.collate([item.pair for item in items]))(
        [IndexedPair(i, pair) for i, pair in enumerate(pairs[:8])])
    batch["negatives"] = model.batcher.responses(texts)
    with torch.no_grad():
        got = teacher.negative_scores(torch.arange(8), batch["negatives"])
        assert got.shape == (8, 2) and torch.allclose(got[2], torch.from_numpy(expected[0]), atol=1e-4)
        context, _, response, _ = model(**{k: v for k, v in batch.items() if k not in ("pair_index", "negatives")})
        teacher.contexts, teacher.responses = context[:, 0], response[:, 0]  # the student's own ranking ...
        teacher.response_tower = lambda **tokens: model.response_slots(**tokens)[0][:, 0]  # ... of its negatives
        teacher.loss.teacher_temperature = model.config.temperature
        plain = float(hdr_loss(model)(batch))
        same = float(hdr_loss(model, teacher)(batch))
        teacher.response_tower = lambda **tokens: -model.response_slots(**tokens)[0][:, 0]  # negatives reversed
        other = float(hdr_loss(model, teacher)(batch))
    assert same == pytest.approx(plain, abs=1e-4) and other > plain + 0.01


@pytest.mark.slow
def test_cli_trains_hdr_distilled_from_its_dual_encoder(dual_encoder, small_corpus, tmp_path, capsys):
    from hashbert.cli import main

    dual_dir = dual_encoder.save(tmp_path / "dual")
    args = ["train", "hdr", "--train", str(small_corpus / "train.txt"), "--out", str(tmp_path / "hdr"),
            "--max-train-pairs", "16", "--batch-size", "8", "--no-progress", "--utterance-length", "16",
            "--vectors-per-utterance", "3", "--layers", "1", "--heads", "4", "--max-response-length", "16",
            "--max-context-turns", "4", "--distill-weight", "1"]
    assert main(args) == 2
    assert "--distill-weight needs --dual-encoder" in capsys.readouterr().err
    assert main([*args, "--dual-encoder", str(dual_dir), "--distill-negatives"]) == 2
    assert "--distill-negatives needs --distill-weight > 0 and --hard-negatives bm25" in capsys.readouterr().err
    assert main([*args, "--dual-encoder", str(dual_dir), "--hard-negatives", "bm25", "--distill-negatives"]) == 0
    run = json.loads((tmp_path / "hdr" / "run.json").read_text())
    assert run["init"]["distill_weight"] == 1 and run["negatives"]["hard_negatives"] == "bm25"
    assert run["init"]["distill_negatives"] is True
    assert len(list((tmp_path / "hdr" / "cache").glob("[!.]*/contexts.npy"))) == 1  # the teacher's vectors


@pytest.mark.slow
def test_cli_freezes_the_utterance_encoder(tmp_path, small_corpus, capsys):
    """``--freeze-utterance-encoder``: the saved utterance encoder is the DR-BERT's context tower unchanged while
    the response tower trains; a DR-BERT with one shared tower is refused."""
    from hashbert.cli import main
    from hashbert.config import DualEncoderConfig
    from hashbert.models.dual_encoder import DualEncoder
    from hashbert.models.registry import load_model

    config = DualEncoderConfig(encoder=EncoderConfig(max_context_length=48, max_response_length=16), shared=False)
    dual_dir = DualEncoder.from_base(config).save(tmp_path / "dual")
    args = ["train", "hdr", "--train", str(small_corpus / "train.txt"), "--dual-encoder", str(dual_dir),
            "--max-train-pairs", "16", "--batch-size", "8", "--no-progress", "--utterance-length", "16",
            "--vectors-per-utterance", "3", "--layers", "1", "--heads", "4", "--max-context-turns", "4",
            "--freeze-utterance-encoder"]
    assert main([*args, "--out", str(tmp_path / "hdr")]) == 0
    start, hdr = DualEncoder.load(dual_dir), load_model(tmp_path / "hdr" / "model")
    for before, after in zip(start.context_encoder.state_dict().values(), hdr.utterance_encoder.state_dict().values(),
                             strict=True):
        assert torch.equal(before, after)
    assert any(not torch.equal(before, after) for before, after in zip(
        start.response_encoder.state_dict().values(), hdr.response_encoder.state_dict().values(), strict=True))
    shared_dir = DualEncoder.from_base(DualEncoderConfig(encoder=config.encoder, shared=True)).save(tmp_path / "one")
    args[args.index(str(dual_dir))] = str(shared_dir)
    assert main([*args, "--out", str(tmp_path / "other")]) == 2
    assert "--freeze-utterance-encoder needs separate towers" in capsys.readouterr().err
