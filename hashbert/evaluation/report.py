"""Results in the seed's format: markdown tables with the seed's rows beside ours, CSV/JSON files, plots.

A row is ``(model_name, {metric: value})``. Re-rank metrics are fractions in [0, 1] (what
``metrics.rerank_metrics`` returns) and print as percentages with two decimals, as on the seed's
results page. The seed's own numbers ship with the package (``seed_tables.csv``,
``seed_fullrank.csv``) so an installed hashbert can print them beside a new run.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from hashbert.io import atomic_write, write_json

logger = logging.getLogger(__name__)

Row = tuple[str, Mapping[str, float]]

METRIC_COLUMNS = ("R10@1", "R10@2", "R10@5", "MRR", "P@1", "MAP")
# The seed's full-rank (Restoration-200K) columns as ``extra_columns``: Top-100 is a fraction.
FULLRANK_COLUMNS = (("Top-100", ".4f"), ("Relevance-100", ".2f"), ("PPL-100", ".4f"))

_SEED_TABLES = "seed_tables.csv"
_SEED_FULLRANK = "seed_fullrank.csv"


def _is_missing(value: float | None) -> bool:
    """True for an absent value: None or NaN."""
    return value is None or math.isnan(value)


def _format_cell(value: float | None, spec: str, scale: float | None = None) -> str:
    """``format(value * scale, spec)`` (unscaled when ``scale`` is None), or "" for a missing value."""
    if _is_missing(value):
        return ""
    return format(value if scale is None else value * scale, spec)


def markdown_table(
    rows: Sequence[Row],
    columns: Sequence[str] = METRIC_COLUMNS,
    percent: bool = True,
    extra_columns: Sequence[tuple[str, str]] = (),
) -> str:
    """Render rows as the seed's markdown table: ``| Models | R10@1 | ... |``, padded to line up.

    Args:
        rows: ``(model_name, {column: value})`` pairs, printed in order; a missing or NaN value
            prints as a blank cell, keys not in the columns are ignored.
        columns: metric columns; values are fractions printed x100 with two decimals when
            ``percent``, else as they are with four decimals.
        percent: whether ``columns`` hold fractions to print as percentages.
        extra_columns: ``(name, format_spec)`` pairs appended after ``columns``, each value
            printed with ``format(value, format_spec)`` (e.g. ``("bytes/response", ",d")``,
            ``("retention", ".1%")``).

    Returns:
        The table as lines joined by newlines, with a trailing newline.
    """
    names = ["Models", *columns, *(name for name, _ in extra_columns)]
    spec, scale = (".2f", 100.0) if percent else (".4f", None)
    body = []
    for model, values in rows:
        cells = [model.replace("|", "\\|")]
        cells.extend(_format_cell(values.get(column), spec, scale) for column in columns)
        cells.extend(_format_cell(values.get(name), extra_spec) for name, extra_spec in extra_columns)
        body.append(cells)
    widths = [max(3, len(name), *(len(cells[i]) for cells in body)) for i, name in enumerate(names)]
    lines = [names, ["-" * width for width in widths], *body]
    return "".join(
        "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |\n" for cells in lines
    )


def _read_packaged_csv(name: str) -> list[dict[str, str]]:
    """Rows of a CSV file shipped inside ``hashbert.evaluation``."""
    text = resources.files("hashbert.evaluation").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _parse_values(record: Mapping[str, str], columns: Sequence[str], scale: float) -> dict[str, float]:
    """Numeric cells of ``record`` divided by ``scale``; empty cells are left out (printed blank)."""
    return {column: float(record[column]) / scale for column in columns if record[column].strip()}


def load_seed_rows(table: int) -> list[tuple[str, dict[str, float]]]:
    """The seed's re-rank table ``table`` (1-4, in page order), values as fractions.

    The packaged CSV holds percentages; they are divided by 100 so they print identically
    through ``markdown_table`` beside ours. A row the seed left blank has no values.

    Args:
        table: 1-4.

    Returns:
        ``(model_name, {"R10@1": ..., "MAP": ...})`` rows in page order (table 1 has 17).

    Raises:
        ValueError: an unknown table number.
    """
    records = _read_packaged_csv(_SEED_TABLES)
    known = sorted({int(record["table"]) for record in records})
    if table not in known:
        raise ValueError(f"unknown seed table {table!r}, expected one of {known}")
    return [
        (record["model"], _parse_values(record, METRIC_COLUMNS, 100.0))
        for record in records
        if int(record["table"]) == table
    ]


def load_seed_selection(tables: Sequence[int], models: Sequence[str] = ()) -> list[tuple[str, dict[str, float]]]:
    """The rows of several seed tables (a row in several is shown once), only ``models`` when given."""
    rows: list[tuple[str, dict[str, float]]] = []
    for table in tables:
        seen = {name for name, _ in rows}
        rows += [row for row in load_seed_rows(table) if row[0] not in seen]
    return [row for row in rows if not models or row[0] in models]


def load_seed_fullrank() -> list[tuple[str, dict[str, float]]]:
    """The seed's full-rank (Restoration-200K) rows: ``Top-100``, ``Relevance-100``, ``PPL-100``.

    ``Top-100`` is a hit rate already stored as a fraction (0.0624 = 6.24%); ``Relevance-100``
    and ``PPL-100`` are plain numbers (a judge score and a perplexity). Values are returned as
    stored; print them with ``markdown_table(rows, columns=(), extra_columns=FULLRANK_COLUMNS)``.

    Returns:
        ``(model_name, {column: value})`` rows in page order.
    """
    columns = [name for name, _ in FULLRANK_COLUMNS]
    return [(record["model"], _parse_values(record, columns, 1.0)) for record in _read_packaged_csv(_SEED_FULLRANK)]


def side_by_side(ours: Sequence[Row], seed_rows: Sequence[Row], seed_label: str = "seed") -> list[Row]:
    """Our rows first, then the seed's with `` (seed)`` (``seed_label``) appended to each name.

    Args:
        ours: our ``(model_name, values)`` rows.
        seed_rows: rows from ``load_seed_rows`` or ``load_seed_fullrank``.
        seed_label: the suffix put in parentheses after each seed row's name.

    Returns:
        One list of rows, ready for ``markdown_table``.
    """
    return [*ours, *((f"{name} ({seed_label})", values) for name, values in seed_rows)]


def write_results_csv(path: str | Path, rows: Sequence[Row], columns: Sequence[str] = METRIC_COLUMNS) -> None:
    """Write rows as CSV (``model,<columns>``), values unscaled at full precision, atomically.

    Args:
        path: destination file.
        rows: ``(model_name, {column: value})`` pairs; a missing or NaN value is an empty cell.
        columns: which values to write, in order.
    """
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["model", *columns])
        for model, values in rows:
            writer.writerow([model, *("" if _is_missing(values.get(c)) else repr(values[c]) for c in columns)])
    logger.info("wrote %d rows to %s", len(rows), path)


def _json_value(value: float | None) -> float | int | None:
    """A JSON-safe number: integers stay integers, NaN/inf/None become null, NumPy scalars plain numbers."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def write_results_json(path: str | Path, rows: Sequence[Row]) -> None:
    """Write rows as ``[{"model": name, "metrics": {key: value}}, ...]`` JSON, in order, atomically.

    Args:
        path: destination file.
        rows: ``(model_name, {key: value})`` pairs; NaN and infinite values are written as null.
    """
    payload = [{"model": model, "metrics": {k: _json_value(v) for k, v in values.items()}} for model, values in rows]
    write_json(path, payload)
    logger.info("wrote %d rows to %s", len(rows), path)


def plot_metric_vs(
    path: str | Path,
    series: Mapping[str, Sequence[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
) -> None:
    """Plot one line with markers per series (e.g. R10@1 against bits) to a PNG, atomically.

    Draws on a bare ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot), so it works
    headless and never changes the caller's matplotlib backend.

    Args:
        path: destination ``.png`` file.
        series: ``{label: [(x, y), ...]}``; points are sorted by x.
        xlabel: x-axis label.
        ylabel: y-axis label.
        title: figure title.
        logx: log-scale x axis (base 2, suited to bits and bytes); every x must be > 0.

    Raises:
        ValueError: no series, an empty series, or x <= 0 with ``logx``.
        ImportError: matplotlib is not installed.
    """
    if not series or any(len(points) == 0 for points in series.values()):
        raise ValueError(f"every series needs at least one point, got {dict(series)!r}")
    if logx and any(x <= 0 for points in series.values() for x, _ in points):
        raise ValueError("logx needs every x > 0")
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plot_metric_vs needs matplotlib: pip install matplotlib") from err
    from matplotlib import colormaps

    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    axes = figure.subplots()
    # One colour per method; its second stage (asymmetric scoring, a re-rank) is the same colour, dashed.
    colours = colormaps["tab10"].colors + colormaps["Dark2"].colors
    families: dict[str, int] = {}
    for label, points in series.items():
        family = label.removesuffix(" sym").removesuffix(" asy").split(" + ")[0]
        colour = colours[families.setdefault(family, len(families)) % len(colours)]
        style = ":" if "float re-rank" in label else "--" if label.endswith(" asy") or "re-rank" in label else "-"
        xs, ys = zip(*sorted(points), strict=True)
        axes.plot(xs, ys, marker="o", linestyle=style, color=colour, label=label)
    if logx:
        axes.set_xscale("log", base=2)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    logger.info("wrote plot %s", path)
