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
    DataConfig,
    DualEncoderConfig,
    EncoderConfig,
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
"""


# ---------------------------------------------------------------------------------------------- subcommands


def cmd_prepare_chitchat(args: argparse.Namespace) -> int:
    from hashbert.data import prepare_chitchat

    meta = prepare_chitchat(args.out, args.seed, args.contexts_per_dialogue, args.max_dialogues or None, show_progress=True)
    for split, stats in meta["splits"].items():
        print(f"{split:>5}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    print(f"responses (full-rank pool): {meta['responses']}  ->  {args.out}")
    return 0


def cmd_train_dual(args: argparse.Namespace) -> int:
    from hashbert.training.dual import train_dual_encoder

    data = config_from_args(DataConfig, args)
    if not data.train:
        raise ValueError("--train is required")
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
    )
    if args.csv:
        write_results_csv(args.csv, rows)
    if args.json:
        write_results_json(args.json, rows)
    seed_rows = load_seed_rows(args.seed_table) if args.seed_table else []
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
        FullRankSettings,
        plot_recall_vs_bytes,
        run_full_rank,
    )
    from hashbert.evaluation.report import markdown_table, write_results_csv

    settings = FullRankSettings(
        model=args.model, pool=args.pool, test=args.test, train=args.train or "",
        bits=tuple(int(b) for b in args.bits.split(",")), hash_models=tuple(args.hash_model or ()),
        candidates=args.candidates, max_queries=args.max_queries, itq_contexts=args.itq_contexts,
        add_gold=args.add_gold, cache_dir=args.cache_dir, seed=args.seed,
    )
    rows = run_full_rank(settings)
    columns = FULLRANK_TABLE_COLUMNS + tuple(name for name, _ in FULLRANK_EXTRA_COLUMNS)
    if args.csv:
        write_results_csv(args.csv, rows, columns)
    if args.plot:
        plot_recall_vs_bytes(args.plot, rows)
    print(markdown_table(rows, FULLRANK_TABLE_COLUMNS, extra_columns=FULLRANK_EXTRA_COLUMNS))
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
    p.add_argument("--seed-table", type=int, default=0, choices=range(0, 5), help="also print that table of the seed (1-4) beneath ours (default: none)")
    p.add_argument("--seed-models", default="", help="comma-separated seed rows to show, e.g. BERT,DR-BERT (default: the whole table)")
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
    p.add_argument("--cache-dir", default="runs/cache", help="cache of encoded vectors, keyed by model and data (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of LSH, ITQ and subsamples (default: 0)")
    p.add_argument("--csv", help="also write the table as CSV here")
    p.add_argument("--plot", help="also plot Recall@100 against bytes per response to this PNG")

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
