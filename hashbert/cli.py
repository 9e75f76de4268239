"""The ``hashbert`` command: thin subcommands over library calls.

Heavy imports (torch, transformers, faiss) happen inside each subcommand, so ``hashbert --help`` is
instant. User errors (bad corpus lines, damaged artefacts, bad flags) end with one ``error:`` line
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hashbert import __version__
from hashbert.config import (
    BprConfig,
    DataConfig,
    DualEncoderConfig,
    EncoderConfig,
    HashConfig,
    HashEncoderConfig,
    HashLossConfig,
    TrainConfig,
    add_config_arguments,
    config_from_args,
)

logger = logging.getLogger("hashbert")

EPILOG_MAIN = """\
typical run (the README's main job does exactly this):
  hashbert data prepare chitchat --out runs/chitchat
  hashbert train dual --train runs/chitchat/train.txt --valid runs/chitchat/valid.txt --out runs/dr-bert
  hashbert evaluate rerank --test runs/chitchat/test.txt --zero-shot --model runs/dr-bert/model
  hashbert train hash --dual-encoder runs/dr-bert/model --train runs/chitchat/train.txt --n-bits 256 --out runs/hb-256
  hashbert evaluate hashing --test runs/chitchat/test.txt --dual-encoder runs/dr-bert/model --bits 256
      --model runs/hb-256/model --name "Hash-BERT(256)" --out runs/hashing     (one command)
"""


# ---------------------------------------------------------------------------------------------- subcommands


def cmd_prepare_chitchat(args: argparse.Namespace) -> int:
    from hashbert.data import prepare_chitchat

    meta = prepare_chitchat(args.out, args.seed, args.contexts_per_dialogue, args.max_dialogues or None, show_progress=True)
    for split, stats in meta["splits"].items():
        print(f"{split:>5}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    print(f"responses (full-rank pool): {meta['responses']}  ->  {args.out}")
    return 0


def _training_data(args: argparse.Namespace) -> DataConfig:
    """The ``DataConfig`` of a training command; its --train file is required."""
    data = config_from_args(DataConfig, args)
    if not data.train:
        raise ValueError("--train is required")
    return data


def cmd_train_dual(args: argparse.Namespace) -> int:
    from hashbert.training.dual import train_dual_encoder

    data = _training_data(args)
    summary = train_dual_encoder(config_from_args(DualEncoderConfig, args), data, config_from_args(TrainConfig, args), args.out)
    state = summary["state"]
    print(
        f"trained {state['step']} steps on {summary['pairs']} pairs in {state['seconds']:.0f} s "
        f"(final loss {state['loss_ema']:.4f}); model saved to {Path(args.out) / 'model'}"
    )
    if state["validations"]:
        last = state["validations"][-1]
        print("validation: " + ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("R", "MRR"))))
    return 0


def cmd_evaluate_rerank(args: argparse.Namespace) -> int:
    from hashbert.evaluation.report import (
        load_seed_rows,
        markdown_table,
        side_by_side,
        write_results_csv,
        write_results_json,
    )
    from hashbert.evaluation.rerank import evaluate_rerank_models

    if not args.model and not args.zero_shot:
        raise ValueError("give at least one --model DIR, or --zero-shot")
    rows = evaluate_rerank_models(
        args.test, args.model, zero_shot=args.zero_shot, base_model=args.base_model, names=args.name,
        batch_size=args.batch_size, max_groups=args.max_groups, seed=args.seed, progress=args.progress,
        scorings=[s.strip() for s in args.scoring.split(",") if s.strip()],
    )
    if args.csv:
        write_results_csv(args.csv, rows)
    if args.json:
        write_results_json(args.json, rows)
    seed_rows = []
    for table in _seed_tables(args.seed_table):  # e.g. 3,4 (the HDR tables); a row in several is shown once
        seen = {name for name, _ in seed_rows}
        seed_rows += [row for row in load_seed_rows(table) if row[0] not in seen]
    if args.seed_models:
        wanted = {name.strip() for name in args.seed_models.split(",")}
        seed_rows = [row for row in seed_rows if row[0] in wanted]
    shown = side_by_side(rows, seed_rows) if seed_rows else rows
    print(markdown_table(shown))
    return 0


def cmd_evaluate_fullrank(args: argparse.Namespace) -> int:
    from hashbert.evaluation.full_rank_suite import (
        FULLRANK_EXTRA_COLUMNS,
        FULLRANK_TABLE_COLUMNS,
        JUDGE_EXTRA_COLUMNS,
        RERANK_COLUMNS,
        RERANK_EXTRA_COLUMNS,
        FullRankSettings,
        plot_recall_vs_bytes,
        run_full_rank,
    )
    from hashbert.evaluation.report import load_seed_fullrank, markdown_table, side_by_side, write_results_csv

    settings = FullRankSettings(
        model=args.model, pool=args.pool, test=args.test, train=args.train or "",
        bits=tuple(_bits(args.bits)), hash_models=tuple(args.hash_model or ()),
        candidates=args.candidates, max_queries=args.max_queries, itq_contexts=args.itq_contexts,
        float_rerank=args.float_rerank,
        add_gold=args.add_gold, cache_dir=args.cache_dir, seed=args.seed,
        relevance_judge=args.relevance_judge or "", lm=args.lm or "", judge_queries=args.judge_queries,
        cross_encoder=args.cross_encoder or "", cross_method=args.cross_method, cross_depths=tuple(_bits(args.cross_depths)),
        cross_queries=args.cross_queries,
    )
    rows = run_full_rank(settings)
    search_rows = [(name, metrics) for name, metrics in rows if "Recall@100" in metrics]
    cross_rows = [(name, metrics) for name, metrics in rows if "Recall@100" not in metrics]
    if args.csv:
        columns = [*FULLRANK_TABLE_COLUMNS, *(n for n, _ in FULLRANK_EXTRA_COLUMNS + JUDGE_EXTRA_COLUMNS + RERANK_EXTRA_COLUMNS)]
        write_results_csv(args.csv, rows, list(dict.fromkeys(columns)))
    if args.plot:
        plot_recall_vs_bytes(args.plot, search_rows)
    print(markdown_table(search_rows, FULLRANK_TABLE_COLUMNS, extra_columns=FULLRANK_EXTRA_COLUMNS))
    if settings.relevance_judge or settings.lm:
        judged = [(name, {**m, "Top-100": m["Recall@100"]}) for name, m in search_rows]
        print(f"Relevance-100 judge: {settings.relevance_judge or 'none'}; PPL-100 language model: {settings.lm or 'none'}")
        print(markdown_table(side_by_side(judged, load_seed_fullrank()), (), extra_columns=JUDGE_EXTRA_COLUMNS))
    if cross_rows:
        print(f"retrieve then re-rank with the cross-encoder {settings.cross_encoder}:")
        print(markdown_table(cross_rows, RERANK_COLUMNS, extra_columns=RERANK_EXTRA_COLUMNS))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from hashbert.data import read_response_pool
    from hashbert.io import atomic_write
    from hashbert.models.registry import load_model

    model = load_model(args.model)
    texts = read_response_pool(args.input)
    if args.side == "response":
        vectors = model.encode_responses(texts, args.batch_size, progress=args.progress)
    else:
        vectors = model.encode_contexts([t.split("\t") for t in texts], args.batch_size, progress=args.progress)
    with atomic_write(args.out) as handle:
        np.save(handle, vectors, allow_pickle=False)
    print(f"encoded {len(texts)} {args.side}s -> {args.out} ({vectors.shape[0]} x {vectors.shape[1]} float32)")
    return 0


def _print_hash_run(summary: dict, out: str) -> None:
    state = summary["state"]
    print(
        f"trained {state['step']} steps on {summary['pairs']} pairs in {state['seconds']:.0f} s "
        f"({summary['n_bits']} bits, final loss {state['loss_ema']:.4f}); model saved to {Path(out) / 'model'}"
    )
    if state["validations"]:
        last = state["validations"][-1]
        print("validation: " + ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("R", "MRR"))))


def cmd_train_hash(args: argparse.Namespace) -> int:
    from hashbert.training.hash_training import train_hash_heads

    summary = train_hash_heads(
        config_from_args(HashConfig, args), config_from_args(HashLossConfig, args),
        config_from_args(HashEncoderConfig, args), config_from_args(DataConfig, args),
        config_from_args(TrainConfig, args), args.out,
    )
    _print_hash_run(summary, args.out)
    return 0


def cmd_train_bpr(args: argparse.Namespace) -> int:
    from hashbert.training.bpr import train_bpr

    summary = train_bpr(config_from_args(BprConfig, args), config_from_args(DataConfig, args), config_from_args(TrainConfig, args), args.out)
    _print_hash_run(summary, args.out)
    return 0


def _seed_tables(text: str) -> list[int]:
    """``"3,4"`` -> [3, 4]; ``"0"`` -> [] (no seed table)."""
    try:
        tables = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        tables = [-1]
    if any(t not in range(0, 5) for t in tables):
        raise ValueError(f"--seed-table takes tables 1-4 (0: none), got {text!r}")
    return [t for t in tables if t]


def _bits(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError as err:
        raise ValueError(f"--bits must be comma-separated integers, got {text!r}") from err


def cmd_train_itq(args: argparse.Namespace) -> int:
    from hashbert.training.baselines import fit_itq_models

    data = _training_data(args)
    saved = fit_itq_models(
        args.dual_encoder, data, _bits(args.bits), args.out, args.cache_dir or None, args.seed, progress=args.progress
    )
    print("saved " + ", ".join(str(p) for p in saved))
    return 0


def cmd_evaluate_hashing(args: argparse.Namespace) -> int:
    from hashbert.evaluation.hashing import EXTRA_COLUMNS, write_hashing_report
    from hashbert.evaluation.report import load_seed_rows, markdown_table

    rows, seed_rows = write_hashing_report(
        args.test, args.dual_encoder, args.out, _bits(args.bits), args.model or (), args.name or (),
        args.cache_dir or None, args.max_groups, args.seed, args.batch_size, args.progress,
        load_seed_rows(args.seed_table) if args.seed_table else [],
    )
    print(markdown_table(rows, extra_columns=EXTRA_COLUMNS))
    if seed_rows:
        print(f"seed table {args.seed_table} (retention against the seed's DR-BERT row):")
        print(markdown_table(seed_rows, extra_columns=EXTRA_COLUMNS[1:]))
    print(f"wrote {Path(args.out) / 'hashing.csv'}, hashing.json, hashing.md and hashing.png")
    return 0


def cmd_train_hdr(args: argparse.Namespace) -> int:
    from hashbert.config import HdrConfig, HdrInitConfig
    from hashbert.training.hdr import train_hdr

    summary = train_hdr(
        config_from_args(HdrConfig, args), config_from_args(HdrInitConfig, args), config_from_args(DataConfig, args),
        config_from_args(TrainConfig, args), args.out,
    )
    state = summary["state"]
    print(
        f"trained {summary['model']['aggregator']} {state['step']} steps on {summary['pairs']} pairs in "
        f"{state['seconds']:.0f} s (final loss {state['loss_ema']:.4f}); model saved to {Path(args.out) / 'model'}"
    )
    if state["validations"]:
        last = state["validations"][-1]
        print("validation: " + ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("R", "MRR"))))
    return 0


def cmd_train_hdr_hash(args: argparse.Namespace) -> int:
    from hashbert.config import HdrHashTrainConfig
    from hashbert.training.hdr_hash import train_hdr_hash

    summary = train_hdr_hash(
        config_from_args(HdrHashTrainConfig, args), config_from_args(HashConfig, args),
        config_from_args(DataConfig, args), config_from_args(TrainConfig, args), args.out,
    )
    _print_hash_run(summary, args.out)
    return 0


def cmd_train_hdr_lsh(args: argparse.Namespace) -> int:
    from hashbert.models.hdr_hash import save_hdr_lsh

    for n_bits in _bits(args.bits):
        path = save_hdr_lsh(args.hdr, n_bits, Path(args.out) / f"lsh-{n_bits}", args.seed)
        print(f"saved {path}")
    return 0


def _print_train_run(summary: dict, out: str, what: str) -> None:
    state = summary["state"]
    print(
        f"trained {what} {state['step']} steps on {summary['pairs']} pairs in {state['seconds']:.0f} s "
        f"(final loss {state['loss_ema']:.4f}); model saved to {Path(out) / 'model'}"
    )
    if state["validations"]:
        last = state["validations"][-1]
        print("validation: " + ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k.startswith(("R", "MRR"))))


def cmd_train_cross(args: argparse.Namespace) -> int:
    from hashbert.config import CrossEncoderConfig, NegativeSamplingConfig
    from hashbert.training.cross import train_cross_encoder

    data = _training_data(args)
    config = config_from_args(CrossEncoderConfig, args)
    summary = train_cross_encoder(
        config, config_from_args(NegativeSamplingConfig, args), data, config_from_args(TrainConfig, args), args.out
    )
    _print_train_run(summary, args.out, "SA-BERT" if config.speakers else "cross-encoder")
    return 0


def cmd_train_post(args: argparse.Namespace) -> int:
    from hashbert.config import PostTrainConfig
    from hashbert.training.post_training import post_train

    data = _training_data(args)
    summary = post_train(config_from_args(PostTrainConfig, args), data, config_from_args(TrainConfig, args), args.out)
    state = summary["state"]
    print(
        f"post-trained {state['step']} steps on {summary['pairs']} examples from {summary['dialogues']} dialogues in "
        f"{state['seconds']:.0f} s (final loss {state['loss_ema']:.4f}); encoder saved to {Path(args.out) / 'encoder'}"
    )
    return 0


def cmd_train_lm(args: argparse.Namespace) -> int:
    from hashbert.config import LanguageModelConfig
    from hashbert.training.lm import train_language_model

    data = _training_data(args)
    summary = train_language_model(config_from_args(LanguageModelConfig, args), data, config_from_args(TrainConfig, args), args.out)
    state = summary["state"]
    print(
        f"trained a {summary['parameters'] / 1e6:.1f}M-parameter GPT-2 {state['step']} steps on {summary['pairs']} pairs "
        f"in {state['seconds']:.0f} s; validation perplexity {summary['valid_perplexity']:.2f} (response tokens); "
        f"saved to {Path(args.out) / 'lm'}"
    )
    return 0


def _add_cross_commands(train) -> None:
    """``train cross``, ``train post`` and ``train lm`` (cross-encoder baselines and full-rank judges, issue 7)."""
    from hashbert.config import CrossEncoderConfig, LanguageModelConfig, NegativeSamplingConfig, PostTrainConfig

    p = _command(
        train, "cross", cmd_train_cross, "train a cross-encoder (BERT; SA-BERT with --speakers; BERT-FP with --init)",
        "Score [CLS] context [SEP] response [SEP] with a linear layer on a pair vector, trained with binary\n"
        "cross-entropy on each training context's true response plus --negatives responses drawn from other\n"
        "pairs. The pair vector is [CLS] (--pooling cls, BERT's), the mean token vector (mean), or the product of\n"
        "the context's and the response's unit-length mean vectors (segments: the layer starts as a scaled cosine,\n"
        "so a sentence-embedding backbone such as all-MiniLM-L6-v2 ranks well from the first step; on a CPU budget\n"
        "it is the one that learns). The context is truncated from the left, the response from the right,\n"
        "--max-length tokens in all. --speakers adds\n"
        "SA-BERT's speaker embedding (speakers from the corpus's .speakers sidecar, else alternating); --init starts\n"
        "from a post-trained encoder ('train post' writes one: BERT-FP). --max-train-pairs counts contexts.\n"
        "Checkpoints, resume and --out layout as 'train dual'.",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, model/, run.json, loss.png")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, CrossEncoderConfig, title="model")
    add_config_arguments(p, NegativeSamplingConfig, title="negatives")
    add_config_arguments(p, TrainConfig, title="training")

    p = _command(
        train, "post", cmd_train_post, "BERT-FP post-training: masked LM + 3-way utterance relevance on the dialogues",
        "Draw --examples (short context, candidate) pairs from the training dialogues: the true next utterance\n"
        "(p 0.25), a random utterance of the same dialogue (0.25) or of another dialogue (0.5), classified 3-way\n"
        "on the pair vector (--pooling, as for 'train cross'), while 15% of the tokens are masked and predicted. Writes --out/encoder (a Hugging Face\n"
        "directory): start a cross-encoder from it with 'train cross --init', a dual-encoder with 'train dual --init'.",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, encoder/, run.json, loss.png")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, PostTrainConfig, title="post-training")
    add_config_arguments(p, TrainConfig, title="training")

    p = _command(
        train, "lm", cmd_train_lm, "train the PPL-100 judge: a small GPT-2 on the training dialogues",
        "A GPT2LMHeadModel (--layers blocks, the encoder's tokenizer; its tied embeddings start from the encoder's\n"
        "word embeddings) trained on context [SEP] response [SEP] of the training pairs. Reports the validation\n"
        "perplexity of the true responses (response tokens only, as PPL-100 counts them). Saved to --out/lm, a\n"
        "Hugging Face directory that 'evaluate fullrank --lm' reads (any local causal-LM directory works there).",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, lm/, run.json, loss.png")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, LanguageModelConfig, title="language model")
    add_config_arguments(p, TrainConfig, title="training", defaults=TrainConfig(lr=1e-3, batch_size=16))


def _add_hdr_commands(train) -> None:
    """``train hdr``, ``train hdr-hash`` and ``train hdr-lsh`` (HDR-BERT, issue 6)."""
    from hashbert.config import HdrConfig, HdrHashTrainConfig, HdrInitConfig

    p = _command(
        train, "hdr", cmd_train_hdr, "train HDR-BERT: utterances encoded alone, cached, combined by an aggregator",
        "Encode each context utterance on its own (--utterance-length tokens, m = --vectors-per-utterance vectors kept),\n"
        "add a turn-position embedding, combine the newest --max-context-turns utterances with a small Transformer\n"
        "(--aggregator trs, trs-mv, colbert or gpt-mv) and merge its output with the newest utterance's own vector.\n"
        "In-batch softmax on cosine (MaxSim for colbert). --dual-encoder starts both encoders from a trained DR-BERT.\n"
        "Same data, checkpoints and resume as 'train dual' (--max-context-length is not used: utterances are short).",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, model/, run.json, loss.png")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, HdrConfig, title="model")
    add_config_arguments(p, HdrInitConfig, title="initialisation")
    add_config_arguments(p, TrainConfig, title="training")

    p = _command(
        train, "hdr-hash", cmd_train_hdr_hash, "train hashing heads on a frozen HDR-BERT (BPR, similarity or VAE recipe)",
        "Encode the training pairs once with the frozen HDR model (cached), then train a hashing head per side:\n"
        "--recipe bpr (tanh(beta h), beta = sqrt(1 + gamma * step), margin ranking on codes + float context . codes\n"
        "cross-entropy), similarity (the similarity-preserving loss) or vae (similarity + quantization + decoder MSE,\n"
        "the seed's VAELoss). Single-vector HDR variants only (trs, trs-mv, gpt-mv).",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, cache, model/, run.json")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, HdrHashTrainConfig, title="recipe")
    add_config_arguments(p, HashConfig, title="hashing heads", defaults=HashConfig(relax="scaled_tanh"))
    add_config_arguments(
        p, TrainConfig, title="training",
        defaults=TrainConfig(lr=1e-3, batch_size=128, epochs=20, warmup_ratio=0.05, save_every=1000, eval_every=500),
    )

    p = _command(
        train, "hdr-lsh", cmd_train_hdr_lsh, "save HDR-BERT + LSH models (random hyperplanes over HDR vectors)",
        "Nothing is trained: each model holds n_bits seeded Gaussian hyperplanes and a checked reference to the HDR\n"
        "model; codes are the signs of the projections (colbert: every context and response vector is hashed and\n"
        "scored by MaxSim over Hamming similarity).",
    )
    p.add_argument("--hdr", required=True, help="trained HDR model directory")
    p.add_argument("--bits", default="256,1024", help="comma-separated code lengths (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hyperplanes (default: %(default)s)")
    p.add_argument("--out", required=True, help="directory for the lsh-<bits>/ models")


# ---------------------------------------------------------------------------------------------- parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def _command(sub, name: str, func: Callable, help: str, description: str | None = None) -> argparse.ArgumentParser:  # noqa: A002
    parser = sub.add_parser(
        name, help=help, description=description or help, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(func=func)
    _add_common(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashbert", description="Fast, compact retrieval-based dialogue: dual-encoders, hashing, binary search.",
        epilog=EPILOG_MAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hashbert {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="{data,train,evaluate,encode}", required=True)

    data = groups.add_parser("data", help="prepare corpora").add_subparsers(dest="action", required=True)
    prepare = data.add_parser("prepare", help="write a corpus in the response-selection format").add_subparsers(
        dest="corpus", required=True
    )
    p = _command(
        prepare, "chitchat", cmd_prepare_chitchat, "the embedded Chit-Chat corpus -> train/valid/test + pool",
        "Join each sender's consecutive messages into turns, split by conversation (90/5/5, seeded), and write\n"
        "train.txt (one line per dialogue; training expands every prefix), valid.txt and test.txt (10 candidates\n"
        "per context: the true next turn + 9 turns of other conversations), *.speakers sidecars, responses.txt\n"
        "(the full-rank pool) and meta.json.",
    )
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="split and negative-sampling seed (default: 0)")
    p.add_argument("--contexts-per-dialogue", type=int, default=5, help="test/valid contexts cut from each dialogue (default: 5)")
    p.add_argument("--max-dialogues", type=int, default=0, help="use only the first N conversations, for quick runs (default: all)")

    train = groups.add_parser("train", help="train models").add_subparsers(dest="model_kind", required=True)
    p = _command(
        train, "dual", cmd_train_dual, "train DR-BERT, the dual-encoder, with in-batch negatives",
        "Fine-tune a context encoder and a response encoder so that a context's dot product with its true\n"
        "response beats the other responses of the batch (softmax cross-entropy over in-batch negatives).\n"
        "Checkpoints go to --out/checkpoints: rerun the same command to resume an interrupted run exactly.\n"
        "The trained model is saved to --out/model, the run's record to --out/run.json and --out/loss.png.",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, model/, run.json, loss.png")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, DualEncoderConfig, title="model")
    add_config_arguments(p, TrainConfig, title="training")

    p = _command(
        train, "hash", cmd_train_hash, "train Hash-BERT hashing heads on a trained DR-BERT",
        "Encode the training pairs once with the DR-BERT (cached under --cache-dir, keyed by a fingerprint of model,\n"
        "data and pair selection), then train a hashing head per side (MLP -> n_bits) with similarity preservation,\n"
        "quantization and reconstruction losses. Seed variants: 'tanh' = --relax tanh --quantization-weight 0;\n"
        "'no-kl' = --reconstruction-weight 0; 'multi_tower_dim' = --hidden; 'dr-bert normalization' = --normalize-input.\n"
        "Checkpoints go to --out/checkpoints (rerun to resume); the model to --out/model, the record to --out/run.json.",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, cache, model/, run.json")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, HashEncoderConfig, title="encoder")
    # Defaults = the best of the 256-bit ablation (README, "What matters in Hash-BERT"): linear heads started
    # from ITQ, straight-through signs, softmax similarity, a light reconstruction term.
    add_config_arguments(p, HashConfig, title="hashing heads", defaults=HashConfig(init="itq", hidden=0, relax="ste"))
    add_config_arguments(p, HashLossConfig, title="loss", defaults=HashLossConfig(quantization_weight=0.0))
    add_config_arguments(
        p, TrainConfig, title="training",
        defaults=TrainConfig(lr=1e-4, batch_size=128, epochs=5, warmup_ratio=0.05, save_every=1000, eval_every=500),
    )

    p = _command(
        train, "bpr", cmd_train_bpr, "train BPR: encoder and linear hashing layers jointly (slow on CPU)",
        "Fine-tune both towers of the base encoder with a linear hashing layer per side: tanh(beta h) with beta =\n"
        "sqrt(1 + gamma * step), or a straight-through sign; a margin ranking loss on codes (candidate generation)\n"
        "plus cross-entropy of the float context against the response codes (re-rank). Saved as a hash_bert model\n"
        "with the encoder embedded.",
    )
    p.add_argument("--out", required=True, help="run directory: checkpoints, model/, run.json")
    add_config_arguments(p, DataConfig, title="data")
    add_config_arguments(p, BprConfig, title="BPR")
    add_config_arguments(p, TrainConfig, title="training")

    p = _command(
        train, "itq", cmd_train_itq, "fit ITQ (PCA + learned rotation) baselines on DR-BERT training vectors",
        "Fit one ITQ model per code length on the DR-BERT vectors of the training pairs (the same cache as\n"
        "'train hash' with the same --train/--max-train-pairs/--seed), saved to --out/itq-<bits>.",
    )
    p.add_argument("--out", required=True, help="directory for itq-<bits>/ models (and the cache, by default)")
    p.add_argument("--dual-encoder", required=True, help="trained DR-BERT model directory")
    p.add_argument("--bits", default="128,256,512,1024,2048,4096", help="comma-separated code lengths (default: %(default)s)")
    p.add_argument("--cache-dir", default="", help="vector cache directory (default: --out/cache)")
    p.add_argument("--seed", type=int, default=42, help="pair subsample and rotation seed (default: 42, as training)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars (default: on)")
    add_config_arguments(p, DataConfig, title="data")

    _add_hdr_commands(train)
    _add_cross_commands(train)

    evaluate = groups.add_parser("evaluate", help="evaluate models").add_subparsers(dest="protocol", required=True)
    p = _command(
        evaluate, "rerank", cmd_evaluate_rerank, "re-rank protocol: R10@1, R10@2, R10@5, MRR, P@1, MAP",
        "Score each test context's candidates (10 in the standard files) with every model and print the\n"
        "seed's table (percentages, two decimals). Ties count against the positives: a positive ranks after\n"
        "every negative with an equal score. Contexts without a positive are skipped.",
    )
    p.add_argument("--test", required=True, help="test file in the response-selection format, grouped by context")
    p.add_argument("--model", action="append", default=None, help="a saved model directory; repeat for several rows")
    p.add_argument("--name", action="append", default=None, help="row name for each --model, in order")
    p.add_argument("--zero-shot", action="store_true", help="add a row for the untrained base encoder (shared towers)")
    p.add_argument("--base-model", default=EncoderConfig().model, help="base encoder of the zero-shot row (default: %(default)s)")
    p.add_argument("--max-groups", type=int, default=0, help="evaluate a seeded subsample of N contexts (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of that subsample (default: 0)")
    p.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default: 64)")
    p.add_argument(
        "--seed-table", default="0",
        help="also print that table of the seed (1-4, or several comma-separated, e.g. 3,4) beneath ours (default: none)",
    )
    p.add_argument("--seed-models", default="", help="comma-separated seed rows to show, e.g. BERT,DR-BERT (default: the whole table)")
    p.add_argument(
        "--scoring", default="symmetric",
        help="hashing models: symmetric (Hamming), asymmetric (float context . code) or both comma-separated (default: %(default)s)",
    )
    p.add_argument("--csv", help="also write the rows as CSV here")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars (default: on)")

    p = _command(
        evaluate, "fullrank", cmd_evaluate_fullrank, "full-rank protocol: search the whole response pool",
        "Every test context searches the whole pool (the training responses, plus each test gold so that it\n"
        "is retrievable). Reports Recall@1/10/100/1000 and MRR (ties count against the gold), index bytes per\n"
        "response, encode ms per context and search ms per query (batch 1 and 256) for float DR-BERT, LSH and\n"
        "ITQ at each --bits and every --hash-model, each without and with the two-stage re-rank (Hamming\n"
        "top-l, then the float context against the candidates' +-1 codes).",
    )
    p.add_argument("--model", required=True, help="the DR-BERT model directory whose vectors every method hashes")
    p.add_argument("--pool", required=True, help="response pool, one per line (e.g. runs/chitchat/responses.txt)")
    p.add_argument("--test", required=True, help="test file in the response-selection format; each group's positive is its gold")
    p.add_argument("--train", help="training file: a sample of its contexts fits ITQ (without it, no ITQ rows)")
    p.add_argument("--bits", default="128,256,512", help="code lengths of the LSH and ITQ rows (default: %(default)s)")
    p.add_argument("--hash-model", action="append", default=None, help="a saved Hash-BERT directory; repeat for several")
    p.add_argument("--candidates", type=int, default=1000, help="l, Hamming candidates re-ranked per query (default: %(default)s)")
    p.add_argument("--max-queries", type=int, default=0, help="seeded subsample of test contexts (default: all)")
    p.add_argument("--itq-contexts", type=int, default=5000, help="training contexts encoded to fit ITQ (default: %(default)s)")
    p.add_argument("--add-gold", action=argparse.BooleanOptionalAction, default=True, help="add test golds missing from the pool (default: on)")
    p.add_argument(
        "--float-rerank", action=argparse.BooleanOptionalAction, default=False,
        help="also re-rank the Hamming candidates against stored float response vectors (default: off)",
    )
    p.add_argument("--cache-dir", default="runs/cache", help="cache of encoded vectors, keyed by model and data (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of LSH, ITQ and subsamples (default: 0)")
    p.add_argument("--csv", help="also write the table as CSV here")
    p.add_argument("--plot", help="also plot Recall@100 against bytes per response to this PNG")
    p.add_argument(
        "--relevance-judge", help="a dual-encoder or cross-encoder directory (not --model) judging each method's top-100: "
        "Relevance-100 = mean (cosine + 1) / 2, or mean sigmoid(logit) for a cross-encoder, x100",
    )
    p.add_argument("--lm", help="a local causal-LM directory ('train lm' writes one): PPL-100 of each method's top-100")
    p.add_argument("--judge-queries", type=int, default=0, help="seeded subsample of queries the judges score (default: all)")
    p.add_argument("--cross-encoder", help="a cross-encoder directory: add retrieve-then-rerank rows (Hamming top-l, then it)")
    p.add_argument("--cross-method", default="", help="whose codes feed the cross-encoder, e.g. 'ITQ(256)' (default: the first hashed row)")
    p.add_argument("--cross-depths", default="20,50,100", help="the l of those rows, comma-separated (default: %(default)s)")
    p.add_argument("--cross-queries", type=int, default=0, help="seeded subsample of queries for those rows (default: all)")

    p = _command(
        evaluate, "hashing", cmd_evaluate_hashing, "hashing methods x code lengths on the re-rank protocol, one table",
        "DR-BERT (float) first, then LSH at every --bits, sign binarisation, and every --model (Hash-BERT, BPR,\n"
        "ITQ), each scored symmetrically (Hamming; ties count against the positives) and asymmetrically (float\n"
        "context . ±1 response code), with bytes per response and retention of R10@1. Writes hashing.csv/.json/.md\n"
        "and hashing.png (R10@1 against bits) to --out, and prints the seed's table beneath.",
    )
    p.add_argument("--test", required=True, help="test file in the response-selection format, grouped by context")
    p.add_argument("--dual-encoder", required=True, help="the trained DR-BERT (float row; vectors for LSH/sign/ITQ/heads)")
    p.add_argument("--model", action="append", default=None, help="a saved hash_bert/itq model directory; repeat")
    p.add_argument("--name", action="append", default=None, help="row name for each --model, in order")
    p.add_argument("--bits", default="128,256,512,1024,2048,4096", help="LSH code lengths (default: %(default)s)")
    p.add_argument("--out", required=True, help="directory for hashing.csv, hashing.json, hashing.md, hashing.png")
    p.add_argument("--cache-dir", default="", help="cache of the test vectors (default: no cache)")
    p.add_argument("--max-groups", type=int, default=0, help="evaluate a seeded subsample of N contexts (default: all)")
    p.add_argument("--seed", type=int, default=0, help="subsample and LSH seed (default: 0)")
    p.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default: 64)")
    p.add_argument("--seed-table", type=int, default=2, choices=range(0, 5), help="seed table printed beneath (0: none; default: 2)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars (default: on)")

    p = _command(groups, "encode", cmd_encode, "encode a file of texts (one per line) into a .npy of float32 vectors")
    p.add_argument("--model", required=True, help="saved model directory (e.g. runs/dr-bert/model)")
    p.add_argument("--input", required=True, help="UTF-8 file, one text per line (contexts: turns separated by tabs)")
    p.add_argument("--out", required=True, help="output .npy file (rows follow the input lines)")
    p.add_argument("--side", choices=("response", "context"), default="response", help="which tower encodes (default: response)")
    p.add_argument("--batch-size", type=int, default=128, help="encoding batch size (default: 128)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar (default: on)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:  # CorpusFormatError and ArtefactError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
