"""Cost per dialogue turn: DR-BERT re-encodes the whole truncated history every turn, HDR-BERT encodes
the newest utterance only (``HdrCache.append``) and then runs its small aggregator.

For real test dialogues of 20 turns and every turn 1..20, batch 1 on the CPU:

* **FLOPs** from token counts and layer shapes (torch's ``FlopCounterMode`` misses the attention
  products of HF's SDPA attention and the fused eval path of ``nn.TransformerEncoderLayer``, so they are
  counted by hand): a Transformer layer over ``n`` positions of width ``H`` with feed-forward width ``F``
  costs ``2 n (4 H^2 + 2 H F)`` (projections and feed-forward, 2 FLOPs per multiply-add) ``+ 4 n^2 H``
  (attention scores and weighted sum). DR-BERT: its 6 layers over the context's tokens (<= 128); HDR
  encoder: the same 6 layers over the newest utterance's tokens (<= ``utterance_length``); HDR
  aggregator: its layers over ``turns x k`` positions (the last one's outputs at the newest turn's ``k``
  only), plus the merge layer and the skip path. Embeddings, LayerNorms,
  softmax and pooling are left out (well under 1%). The linear part is cross-checked against
  ``FlopCounterMode`` for DR-BERT.
* **Wall-clock ms**: median over ``--repeats`` runs (after a warm-up) of the whole per-turn work,
  tokenisation included: DR-BERT ``tokenize + context tower``; HDR ``append + context_vectors`` on a copy
  of the cache holding the earlier turns.

Usage::

    python benchmarks/turn_cost.py                      # trained models under runs/, 2 threads
    python benchmarks/turn_cost.py --dialogues 2 --repeats 3   # quicker
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import statistics
from pathlib import Path

import numpy as np
import torch

from hashbert.config import HDR_AGGREGATORS, HdrConfig
from hashbert.data import read_rerank_groups
from hashbert.evaluation.full_rank import median_ms
from hashbert.evaluation.report import markdown_table, plot_metric_vs
from hashbert.io import atomic_write
from hashbert.models.dual_encoder import DualEncoder
from hashbert.models.hdr.cache import HdrCache
from hashbert.models.hdr.model import HdrModel

logger = logging.getLogger("turn_cost")

RATIO_TURNS = (1, 5, 10, 15, 20)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=Path, default=Path("runs/chitchat/test.txt"),
                        help="test file: dialogues come from its contexts")
    parser.add_argument("--dual-encoder", type=Path, default=Path("runs/dr-bert/model"), help="the trained DR-BERT")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="HDR models are <runs>/hdr-<aggregator>/model")
    parser.add_argument("--turns", type=int, default=20, help="dialogue length in turns (default: %(default)s)")
    parser.add_argument("--dialogues", type=int, default=5, help="real test dialogues timed (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per turn (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which dialogues (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results",
                        help="turn_cost.md/.csv/.png go here")
    return parser.parse_args(argv)


def layer_flops(n: int, width: int, ffn: int, queries: int | None = None) -> int:
    """FLOPs of one Transformer layer over ``n`` positions (see the module docstring), or of its outputs at
    ``queries`` of them only (keys and values still over all ``n``: HDR's last aggregator layer)."""
    q = n if queries is None else queries
    return 2 * n * 2 * width * width + 2 * q * (2 * width * width + 2 * width * ffn) + 4 * q * n * width


def bert_flops(backbone, n: int) -> int:
    """FLOPs of a BERT encoder (HF model) over ``n`` tokens; its layers counted, not its config's (HDR's
    ``utterance_layers`` cuts the stack and keeps the config)."""
    config = backbone.config
    return len(backbone.encoder.layer) * layer_flops(n, config.hidden_size, config.intermediate_size)


def aggregator_flops(model: HdrModel, turns: int) -> int:
    """FLOPs of the HDR aggregator over ``turns`` cached turns, merge layer included."""
    config, width = model.config, model.dim
    n, out = turns * config.slots, config.slots if model.multi_vector else 1
    history = 2 * turns * width if config.history_decay else 0  # the skip path's weighted sum
    ffn = config.ffn_dim or 4 * width
    layers = (config.layers - 1) * layer_flops(n, width, ffn) + layer_flops(n, width, ffn, queries=config.slots)
    return layers + out * 2 * (2 * width) * width + history


def load_dialogues(path: Path, turns: int, count: int, seed: int) -> list[tuple[str, ...]]:
    """``count`` real test dialogues (their first ``turns`` turns), from distinct conversations."""
    by_start: dict[str, tuple[str, ...]] = {}
    for group in read_rerank_groups(path):
        if len(group.context) >= turns:
            by_start.setdefault(group.context[0], group.context[:turns])
    dialogues = sorted(by_start.values())
    if len(dialogues) < count:
        raise ValueError(f"only {len(dialogues)} test dialogues have {turns} turns, {count} asked")
    keep = np.random.default_rng(seed).choice(len(dialogues), count, replace=False)
    return [dialogues[i] for i in sorted(keep)]


@torch.inference_mode()
def dr_bert_turns(dual: DualEncoder, dialogue: tuple[str, ...], repeats: int) -> list[dict]:
    """Per turn: DR-BERT's tokens, FLOPs and ms to encode the (truncated) history so far."""
    rows = []
    for t in range(1, len(dialogue) + 1):
        history = dialogue[:t]
        n = int(dual.batcher.contexts([history])["attention_mask"].sum())
        ms = median_ms(lambda h=history: dual.context_encoder(**dual.batcher.contexts([h])), repeats)
        rows.append({"turn": t, "tokens": n, "encoder_flops": bert_flops(dual.context_encoder.backbone, n),
                     "aggregator_flops": 0, "ms": ms})
    return rows


@torch.inference_mode()
def hdr_turns(model: HdrModel, dialogue: tuple[str, ...], repeats: int) -> list[dict]:
    """Per turn: HDR's newest-utterance tokens, encoder and aggregator FLOPs, and ms of append + aggregate."""
    cache, rows = HdrCache(model), []
    for t, utterance in enumerate(dialogue, start=1):
        n = int(model.tokenize_utterances([utterance])["attention_mask"].sum())

        def turn(u=utterance):
            trial = cache.copy()
            trial.append(u)
            return trial.context_vectors()

        ms = median_ms(turn, repeats)
        cache.append(utterance)
        rows.append({"turn": t, "tokens": n, "encoder_flops": bert_flops(model.utterance_encoder.backbone, n),
                     "aggregator_flops": aggregator_flops(model, len(cache)), "ms": ms})
    return rows


def load_models(args: argparse.Namespace) -> dict[str, object]:
    """DR-BERT and one HDR model per aggregator: the trained one if saved under ``--runs``, else an untrained
    one of the same shape (the cost does not depend on the weights)."""
    models: dict[str, object] = {"DR-BERT": DualEncoder.load(args.dual_encoder)}
    for aggregator in HDR_AGGREGATORS:
        path = args.runs / f"hdr-{aggregator}" / "model"
        if path.is_dir():
            model = HdrModel.load(path)
        else:
            logger.warning("%s not found: timing an untrained %s of the default shape", path, aggregator)
            model = HdrModel.build(HdrConfig(aggregator=aggregator), args.dual_encoder).eval()
        models[model.row_name] = model
    return models


def flop_counter_check(dual: DualEncoder, history: tuple[str, ...]) -> tuple[float, float]:
    """(FlopCounterMode's GFLOPs, our linear-layer GFLOPs) for one DR-BERT context encoding."""
    from torch.utils.flop_counter import FlopCounterMode

    tokens = dual.batcher.contexts([history])
    n = int(tokens["attention_mask"].sum())
    config = dual.context_encoder.backbone.config
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        dual.context_encoder(**tokens)
    width, ffn = config.hidden_size, config.intermediate_size
    ours = config.num_hidden_layers * 2 * n * (4 * width**2 + 2 * width * ffn)
    return counter.get_total_flops() / 1e9, ours / 1e9


def summarise(results: dict[str, list[list[dict]]], turns: int) -> dict[str, list[dict]]:
    """Per model and turn: median ms and mean tokens/FLOPs over the dialogues."""
    out = {}
    for name, per_dialogue in results.items():
        out[name] = [
            {
                "turn": t,
                "ms": statistics.median(d[t - 1]["ms"] for d in per_dialogue),
                **{k: float(np.mean([d[t - 1][k] for d in per_dialogue]))
                   for k in ("tokens", "encoder_flops", "aggregator_flops")},
            }
            for t in range(1, turns + 1)
        ]
    return out


def report(summary: dict[str, list[dict]], args: argparse.Namespace, check: tuple[float, float], load: str) -> str:
    """The markdown: ratio tables at a few turns, then the per-turn ms and GFLOPs tables."""
    base = summary["DR-BERT"]
    hdr_names = [n for n in summary if n != "DR-BERT"]
    ratio_rows = []
    for name in hdr_names:
        for t in [t for t in RATIO_TURNS if t <= args.turns]:
            ours, theirs = summary[name][t - 1], base[t - 1]
            ratio_rows.append((f"{name} @ turn {t}", {
                "DR-BERT GFLOPs": theirs["encoder_flops"] / 1e9, "HDR enc GFLOPs": ours["encoder_flops"] / 1e9,
                "HDR agg GFLOPs": ours["aggregator_flops"] / 1e9,
                "FLOPs ratio (enc)": theirs["encoder_flops"] / ours["encoder_flops"],
                "FLOPs ratio (enc+agg)": theirs["encoder_flops"] / (ours["encoder_flops"] + ours["aggregator_flops"]),
                "DR-BERT ms": theirs["ms"], "HDR ms": ours["ms"], "ms ratio": theirs["ms"] / ours["ms"],
            }))
    ratio_columns = (("DR-BERT GFLOPs", ".3f"), ("HDR enc GFLOPs", ".3f"), ("HDR agg GFLOPs", ".3f"),
                     ("FLOPs ratio (enc)", ".1f"), ("FLOPs ratio (enc+agg)", ".1f"), ("DR-BERT ms", ".1f"),
                     ("HDR ms", ".1f"), ("ms ratio", ".2f"))
    per_turn = [(f"turn {t}", {**{f"{n} ms": summary[n][t - 1]["ms"] for n in summary},
                               "DR-BERT tokens": base[t - 1]["tokens"]}) for t in range(1, args.turns + 1)]
    per_turn_columns = [(f"{n} ms", ".1f") for n in summary] + [("DR-BERT tokens", ".0f")]
    header = (
        f"# Cost per turn: DR-BERT vs HDR-BERT\n\n"
        f"{args.dialogues} real Chit-Chat test dialogues of {args.turns} turns, "
        f"batch 1, CPU, {args.threads} threads, median of {args.repeats} runs per turn (ms: median over dialogues; "
        f"tokens and FLOPs: mean over dialogues). FLOPs from token counts and layer shapes "
        f"(`benchmarks/turn_cost.py` docstring); FlopCounterMode cross-check on one DR-BERT context: "
        f"{check[0]:.3f} GFLOPs counted vs {check[1]:.3f} GFLOPs by our linear-layer formula. "
        f"Load average during the run: {load}.\n\n"
    )
    return (
        header + "## Ratios (DR-BERT / HDR)\n\n" + markdown_table(ratio_rows, columns=(), extra_columns=ratio_columns)
        + "\n## Milliseconds per turn\n\n" + markdown_table(per_turn, columns=(), extra_columns=per_turn_columns)
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    dialogues = load_dialogues(args.test, args.turns, args.dialogues, args.seed)
    models = load_models(args)
    results = {name: [] for name in models}
    for i, dialogue in enumerate(dialogues):
        for name, model in models.items():
            run = dr_bert_turns if name == "DR-BERT" else hdr_turns
            results[name].append(run(model, dialogue, args.repeats))
        logger.info("dialogue %d/%d done", i + 1, len(dialogues))
    summary = summarise(results, args.turns)
    check = flop_counter_check(models["DR-BERT"], dialogues[0][:10])
    text = report(summary, args, check, " ".join(f"{x:.2f}" for x in os.getloadavg()))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out_dir / "turn_cost.md", "w") as handle:
        handle.write(text)
    with atomic_write(args.out_dir / "turn_cost.csv", "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["model", "turn", "ms", "tokens", "encoder_flops", "aggregator_flops"])
        for name, rows in summary.items():
            writer.writerows(
                [name, r["turn"], f"{r['ms']:.3f}", r["tokens"], r["encoder_flops"], r["aggregator_flops"]]
                for r in rows
            )
    series = {name: [(r["turn"], r["ms"]) for r in rows] for name, rows in summary.items()}
    plot_metric_vs(args.out_dir / "turn_cost.png", series, "dialogue turn", "ms per turn (median)",
                   f"Context encoding cost per turn (batch 1, CPU, {args.threads} threads)")
    print(text)


if __name__ == "__main__":
    main()
