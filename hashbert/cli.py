"""The ``hashbert`` command: a loop over ``COMMANDS``, each a path, a run config (``hashbert.config.runs``:
its fields are the flags) and one library call. Heavy imports happen inside the calls, so ``--help`` is
instant; user errors end with one ``error:`` line and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hashbert import __version__
from hashbert.config import add_config_arguments, config_from_args
from hashbert.config import bundle_runs as b
from hashbert.config import inference as o
from hashbert.config import runs as r
from hashbert.training.launch import process_rank, run_on_other_rank  # environment only, no torch
from hashbert.training.report import describe_run  # plain text, no torch

EPILOG_MAIN = """\
typical run (the README's main job does exactly this):
  hashbert data prepare chitchat --out runs/chitchat
  hashbert train dual --train runs/chitchat/train.txt --valid runs/chitchat/valid.txt --out runs/dr-bert
  hashbert evaluate rerank --test runs/chitchat/test.txt --zero-shot --model runs/dr-bert/model
  hashbert train hash --dual-encoder runs/dr-bert/model --train runs/chitchat/train.txt --n-bits 256 --out runs/hb-256
  hashbert evaluate hashing --test runs/chitchat/test.txt --dual-encoder runs/dr-bert/model --bits 256
      --model runs/hb-256/model --name "Hash-BERT(256)" --out runs/hashing     (one command)
"""


# ---------------------------------------------------------------------------------------------- commands


def prepare_chitchat_command(run: r.PrepareChitchatRun) -> int:
    from hashbert.data import prepare_chitchat

    out = run.output.out
    meta = prepare_chitchat(
        out, run.seed, run.contexts_per_dialogue, run.max_dialogues or None, True, negatives=run.negatives
    )
    for split, stats in meta["splits"].items():
        print(f"{split:>5}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    print(f"responses (full-rank pool): {meta['responses']}  ->  {out}")
    return 0


def train_dual_command(run: r.TrainDualRun) -> int:
    from hashbert.training.dual import train_dual_encoder

    summary = train_dual_encoder(run.model, run.data, run.train, run.output.out, run.negatives, run.distill)
    print(describe_run(summary, "DR-BERT", Path(run.output.out) / "model"))
    return 0


def train_hash_command(run: r.TrainHashRun) -> int:
    from hashbert.training.hash_training import train_hash_heads

    summary = train_hash_heads(run.hash, run.loss, run.encoder, run.data, run.train, run.output.out, run.negatives)
    print(describe_run(summary, f"Hash-BERT({summary['n_bits']})", Path(run.output.out) / "model"))
    return 0


def train_bpr_command(run: r.TrainBprRun) -> int:
    from hashbert.training.bpr import train_bpr

    summary = train_bpr(run.bpr, run.data, run.train, run.output.out)
    print(describe_run(summary, f"BPR({summary['n_bits']})", Path(run.output.out) / "model"))
    return 0


def train_itq_command(run: r.TrainItqRun) -> int:
    from hashbert.training.baselines import fit_itq_models

    saved = fit_itq_models(
        run.dual_encoder, run.data, run.bits, run.output.out, run.cache_dir or None, run.seed, progress=run.progress
    )
    print("saved " + ", ".join(str(p) for p in saved))
    return 0


def train_hdr_command(run: r.TrainHdrRun) -> int:
    from hashbert.training.hdr import train_hdr

    summary = train_hdr(run.model, run.init, run.data, run.train, run.output.out, run.negatives)
    print(describe_run(summary, f"HDR-BERT ({run.model.aggregator})", Path(run.output.out) / "model"))
    return 0


def train_hdr_hash_command(run: r.TrainHdrHashRun) -> int:
    from hashbert.training.hdr_hash import train_hdr_hash

    summary = train_hdr_hash(run.recipe, run.hash, run.data, run.train, run.output.out)
    what = f"HDR-BERT hashing heads ({run.recipe.recipe}, {summary['n_bits']} bits)"
    print(describe_run(summary, what, Path(run.output.out) / "model"))
    return 0


def train_hdr_lsh_command(run: r.TrainHdrLshRun) -> int:
    from hashbert.models.hdr.hashing import save_hdr_lsh

    for n_bits in run.bits:
        print(f"saved {save_hdr_lsh(run.hdr, n_bits, Path(run.output.out) / f'lsh-{n_bits}', run.seed)}")
    return 0


def train_cross_command(run: r.TrainCrossRun) -> int:
    from hashbert.training.cross import train_cross_encoder

    summary = train_cross_encoder(run.model, run.negatives, run.data, run.train, run.output.out)
    what = "SA-BERT" if run.model.speakers else ("BERT-FP" if run.model.backbone.init else "BERT")
    print(describe_run(summary, f"cross-encoder {what}", Path(run.output.out) / "model"))
    return 0


def train_post_command(run: r.TrainPostRun) -> int:
    from hashbert.training.post_training import post_train

    summary = post_train(run.post, run.data, run.train, run.output.out)
    details = f", {summary['dialogues']} dialogues"
    print(describe_run(summary, "BERT-FP post-training", Path(run.output.out) / "encoder", details))
    return 0


def train_lm_command(run: r.TrainLmRun) -> int:
    from hashbert.training.lm import train_language_model

    summary = train_language_model(run.lm, run.data, run.train, run.output.out)
    details = f", validation perplexity {summary['valid_perplexity']:.2f} on response tokens"
    what = f"a {summary['parameters'] / 1e6:.1f}M-parameter GPT-2"
    print(describe_run(summary, what, Path(run.output.out) / "lm", details))
    return 0


def evaluate_rerank_command(run: r.EvaluateRerankRun) -> int:
    from hashbert.evaluation import report
    from hashbert.evaluation.rerank import evaluate_rerank_models, rerank_columns

    data = run.data
    rows = evaluate_rerank_models(
        data.test, run.model, zero_shot=run.zero_shot, base_model=run.base_model, names=run.name,
        batch_size=data.batch_size, max_groups=data.max_groups, seed=data.seed, progress=data.progress,
        scorings=list(run.scoring), one_of_n=run.one_of_n, inference=run.inference,
        newest_turns=run.newest_turns,
    )
    columns = rerank_columns(rows)  # R10@k for the standard files, Rn@k for groups of n
    if run.files.csv:
        report.write_results_csv(run.files.csv, rows, columns)
    if run.files.json:
        report.write_results_json(run.files.json, rows)
    # The seed reports R10@k: beside Rn@k of another n its rows would mislead.
    seed_rows = report.load_seed_selection(run.seeds.tables, run.seeds.seed_models) if "R10@1" in columns else []
    print(report.markdown_table(report.side_by_side(rows, seed_rows) if seed_rows else rows, columns))
    return 0


def evaluate_fullrank_command(run: r.EvaluateFullRankRun) -> int:
    from hashbert.evaluation.full_rank_table import full_rank_report, run_full_rank

    print(full_rank_report(run_full_rank(run.settings), run.settings, run.csv, run.plot))
    return 0


def evaluate_hashing_command(run: r.EvaluateHashingRun) -> int:
    from hashbert.evaluation.hashing import EXTRA_COLUMNS, write_hashing_report
    from hashbert.evaluation.report import load_seed_selection, markdown_table

    data, seed_rows = run.data, load_seed_selection(run.seeds.tables, run.seeds.seed_models)
    rows, seed_rows = write_hashing_report(
        data.test, run.dual_encoder, run.output.out, run.bits, run.model, run.name, run.cache_dir or None,
        data.max_groups, data.seed, data.batch_size, data.progress, seed_rows,
    )
    print(markdown_table(rows, extra_columns=EXTRA_COLUMNS))
    if seed_rows:
        print(f"seed table {','.join(map(str, run.seeds.tables))} (retention against the seed's DR-BERT row):")
        print(markdown_table(seed_rows, extra_columns=EXTRA_COLUMNS[1:]))
    print(f"wrote {Path(run.output.out) / 'hashing.csv'}, hashing.json, hashing.md and hashing.png")
    return 0


def serve_command(run: r.ServeRun) -> int:
    from hashbert.serving.server import serve

    serve(run.bundle, run.serve)
    return 0


def index_build_command(run: b.IndexBuildRun) -> int:
    from hashbert.serving.bundle import build_bundle

    manifest = build_bundle(
        run.model, run.responses, run.output.out, float_vectors=run.float_vectors, chunk_size=run.chunk_size,
        progress=run.progress, inference=run.inference, store=run.store,
    )
    print(f"{manifest.pool_size} responses, {manifest.scoring}, {manifest.bytes_per_response:g} bytes/response"
          f"  ->  {run.output.out}")
    return 0


def index_add_command(run: b.IndexAddRun) -> int:
    from hashbert.serving.bundle import add_to_bundle

    manifest = add_to_bundle(run.bundle, run.responses, chunk_size=run.chunk_size, progress=run.progress)
    print(f"{run.bundle}: {manifest.pool_size} responses (revision {manifest.revision})")
    return 0


def index_info_command(run: b.IndexInfoRun) -> int:
    import json

    from hashbert.config import config_to_dict
    from hashbert.serving.bundle import read_manifest

    print(json.dumps(config_to_dict(read_manifest(run.bundle)), indent=2, sort_keys=True))
    return 0


def search_command(run: b.SearchRun) -> int:
    from hashbert.serving.chat import format_selection
    from hashbert.serving.retriever import Retriever

    how = run.retrieval
    retriever = Retriever.load(run.bundle, how.threads or None, how.rerank_candidates, how.inference)
    print(format_selection(retriever.select(run.turns, how.k)))
    return 0


def chat_command(run: b.ChatRun) -> int:
    from hashbert.serving.chat import run_chat
    from hashbert.serving.retriever import Retriever

    how = run.retrieval
    retriever = Retriever.load(run.bundle, how.threads or None, how.rerank_candidates, how.inference)
    lines = (line.rstrip("\n") for line in sys.stdin)
    return run_chat(retriever, lines, lambda text: print(text, flush=True), how.k)


def encode_command(run: r.EncodeRun) -> int:
    from hashbert.models.text_file import encode_text_file

    rows, dim = encode_text_file(run.model, run.input, run.out, run.side, run.batch_size, run.progress, run.inference)
    print(f"encoded {rows} {run.side}s -> {run.out} ({rows} x {dim} float32)")
    return 0


def export_onnx_command(run: o.ExportOnnxRun) -> int:
    from hashbert.models.onnx import export_onnx

    print(f"exported -> {export_onnx(run.model, run.quantize)}")
    return 0


# ---------------------------------------------------------------------------------------------- the table


class Command(NamedTuple):
    """One ``hashbert`` command: where it sits, what it is told (a run config, whose docstring is the
    command's help: its first line, then the description), what it calls, and the artefacts it publishes
    under ``--out`` as ``(name, kind)`` (checked before any work: what hashbert did not write is kept)."""

    path: tuple[str, ...]
    run: type
    func: Callable[[Any], int]
    writes: Callable[[Any], list[tuple[str, str | None]]] = lambda run: []
    out_kind: str = ""  # --out is itself an artefact of this kind (a bundle), claimed in its parent

    @property
    def help(self) -> str:
        """The run config's first docstring line, without its full stop."""
        return inspect.cleandoc(self.run.__doc__ or "").partition("\n")[0].rstrip(".")

    @property
    def description(self) -> str:
        """The run config's docstring after its first line (the command's story), else the one-line help."""
        return inspect.cleandoc(self.run.__doc__ or "").partition("\n")[2].strip() or self.help


def _model(kind: str) -> Callable[[Any], list[tuple[str, str | None]]]:
    return lambda run: [("model", kind)]


def _per_bits(prefix: str, kind: str) -> Callable[[Any], list[tuple[str, str | None]]]:
    return lambda run: [(f"{prefix}-{n_bits}", kind) for n_bits in run.bits]


GROUPS = {
    ("data",): "prepare corpora",
    ("data", "prepare"): "write a corpus in the response-selection format",
    ("train",): "train models",
    ("evaluate",): "evaluate models",
    ("index",): "build, extend and describe deployable index bundles",
    ("export",): "export models for other runtimes",
}

COMMANDS: tuple[Command, ...] = (
    Command(("data", "prepare", "chitchat"), r.PrepareChitchatRun, prepare_chitchat_command),
    Command(("train", "dual"), r.TrainDualRun, train_dual_command, _model("dual_encoder")),
    Command(("train", "hash"), r.TrainHashRun, train_hash_command, _model("hash_bert")),
    Command(("train", "bpr"), r.TrainBprRun, train_bpr_command, _model("hash_bert")),
    Command(("train", "itq"), r.TrainItqRun, train_itq_command, _per_bits("itq", "itq")),
    Command(("train", "hdr"), r.TrainHdrRun, train_hdr_command, _model("hdr")),
    Command(("train", "hdr-hash"), r.TrainHdrHashRun, train_hdr_hash_command, _model("hdr_hash")),
    Command(("train", "hdr-lsh"), r.TrainHdrLshRun, train_hdr_lsh_command, _per_bits("lsh", "hdr_hash")),
    Command(("train", "cross"), r.TrainCrossRun, train_cross_command, _model("cross_encoder")),
    Command(("train", "post"), r.TrainPostRun, train_post_command, lambda run: [("encoder", "encoder")]),
    Command(("train", "lm"), r.TrainLmRun, train_lm_command, lambda run: [("lm", "causal-lm")]),
    Command(("evaluate", "rerank"), r.EvaluateRerankRun, evaluate_rerank_command),
    Command(("evaluate", "fullrank"), r.EvaluateFullRankRun, evaluate_fullrank_command),
    Command(("evaluate", "hashing"), r.EvaluateHashingRun, evaluate_hashing_command),
    Command(("encode",), r.EncodeRun, encode_command),
    Command(("index", "build"), b.IndexBuildRun, index_build_command, out_kind="bundle"),
    Command(("index", "add"), b.IndexAddRun, index_add_command),
    Command(("index", "info"), b.IndexInfoRun, index_info_command),
    Command(("search",), b.SearchRun, search_command),
    Command(("chat",), b.ChatRun, chat_command),
    Command(("serve",), r.ServeRun, serve_command),
    Command(("export", "onnx"), o.ExportOnnxRun, export_onnx_command),
)


# ---------------------------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage and exit; one line is enough
        raise ValueError(f"{self.prog}: {message} (see --help)")


def _subparsers(parser: argparse.ArgumentParser, depth: int) -> argparse._SubParsersAction:
    return parser.add_subparsers(dest=f"command_{depth}", metavar="COMMAND", required=True, parser_class=_Parser)


def build_parser() -> argparse.ArgumentParser:
    """The ``hashbert`` parser: one subcommand per ``COMMANDS`` entry, flags generated from its run config."""
    parser = _Parser(
        prog="hashbert", description="Fast, compact retrieval-based dialogue: dual-encoders, hashing, binary search.",
        epilog=EPILOG_MAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hashbert {__version__}")
    nodes: dict[tuple[str, ...], argparse._SubParsersAction] = {(): _subparsers(parser, 0)}
    for command in COMMANDS:
        for depth in range(1, len(command.path)):  # the groups on the way, once each
            prefix = command.path[:depth]
            if prefix not in nodes:
                group = nodes[prefix[:-1]].add_parser(prefix[-1], help=GROUPS[prefix], description=GROUPS[prefix])
                nodes[prefix] = _subparsers(group, depth)
        sub = nodes[command.path[:-1]].add_parser(
            command.path[-1], help=command.help, description=command.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
        add_config_arguments(sub, command.run, title="options of this command")
        sub.set_defaults(command=command)
    return parser


def run_command(command: Command, run: Any) -> int:
    """Run ``command``; one with an ``--out`` holds a lock on it and refuses, before any work, to replace what
    hashbert did not write there (or an artefact of another kind) unless told ``--overwrite``. Under torchrun
    only rank 0 claims ``--out`` and prints."""
    if process_rank():
        return run_on_other_rank(command.func, run)
    output = getattr(run, "output", None)
    if output is None:
        return command.func(run)
    from hashbert.io import claimed_output

    out, writes = Path(output.out), command.writes(run)
    if command.out_kind:  # the artefact is --out itself: claim it in its parent folder
        out, writes = out.parent, [(out.name, command.out_kind)]
    with claimed_output(out, writes, output.overwrite):
        return command.func(run)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``hashbert`` command; returns the exit status (2 for any user error, with one ``error:`` line)."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.WARNING if process_rank() else logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return run_command(args.command, config_from_args(args.command.run, args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:  # bad flags, CorpusFormatError and ArtefactError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
