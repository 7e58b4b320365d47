"""Human-readable report for a champion/challenger comparison.

Every compare run writes a decision record (the dict also stored as
``decision.json``).  This module turns that record into two artifacts that the
caller logs with ``mlflow.log_artifact`` so they show up in the MLflow UI:

* ``contingency.png`` -- the paired 2x2 table (mlxtend layout, champion is
  model 1) as an annotated heatmap with the discordant cells b and c
  highlighted, next to both accuracies with Wilson 95% intervals.  When the
  record holds several ``comparisons`` a third panel shows every challenger.
* ``report.html`` -- one self-contained page (inline CSS, PNG embedded as a
  base64 data URI, no external resources) with the decision, its reason and
  the key numbers.

Fields may be missing or null depending on the decision (``no_challenger``
and ``bootstrap`` have no table), so every accessor here tolerates absence.
All strings taken from the record are HTML-escaped: model names, reasons and
"why" texts are user-controlled.

Importing this module has no side effects: the figure is drawn with
``matplotlib.figure.Figure`` and ``FigureCanvasAgg`` directly instead of
pyplot, so no global backend or rcParams are changed.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from scipy.stats import norm

__all__ = [
    "CONTINGENCY_FILENAME",
    "REPORT_FILENAME",
    "render_contingency_png",
    "render_report_html",
    "wilson_interval",
    "write_report",
]

logger = logging.getLogger(__name__)

CONTINGENCY_FILENAME = "contingency.png"
REPORT_FILENAME = "report.html"

_DPI = 110
_CONFIDENCE = 0.95

# Human labels and colours per decision.  Unknown decisions fall back to a
# neutral style; the colour is never taken from the record itself.
_DECISION_LABELS: dict[str, str] = {
    "promote": "Promote",
    "keep": "Keep champion",
    "bootstrap": "Bootstrap",
    "no_challenger": "No challenger",
    "superseded": "Superseded",
    "unchanged": "Unchanged",
    "rollback": "Rollback",
}
_DECISION_COLOURS: dict[str, str] = {
    "promote": "#1a7f37",
    "keep": "#57606a",
    "bootstrap": "#0969da",
    "no_challenger": "#57606a",
    "superseded": "#9a6700",
    "unchanged": "#57606a",
    "rollback": "#cf222e",
}
_NEUTRAL = "#57606a"
_CHAMPION_COLOUR = "#57606a"
_CHALLENGER_COLOUR = "#0969da"
# b favours the champion, c favours the challenger: the outline colours say so.
_B_COLOUR = "#bc4c00"
_C_COLOUR = "#0969da"

_P_VALUE_METHODS = ("exact", "midp", "corrected", "asymptotic")


# --------------------------------------------------------------------------
# Small, defensive accessors: the record comes from JSON and may be partial.
# --------------------------------------------------------------------------


def _sub(record: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    """Return ``record[key]`` if it is a mapping, else an empty mapping."""
    if not isinstance(record, Mapping):
        return {}
    value = record.get(key)
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    """Coerce a JSON value to a finite-or-infinite float, ``None`` if not numeric."""
    # bool is an int subclass; True is not a count or a p-value.
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _table(value: Any) -> tuple[int, int, int, int] | None:
    """Validate a 2x2 contingency table and return ``(a, b, c, d)``.

    Returns ``None`` (and logs why) for absent or malformed tables so the
    renderers can fall back to a "no table" view instead of crashing.
    """
    if value is None:
        return None
    try:
        rows = [list(row) for row in value]
        if len(rows) != 2 or any(len(row) != 2 for row in rows):
            raise ValueError("not 2x2")
        cells = [rows[0][0], rows[0][1], rows[1][0], rows[1][1]]
        counts = []
        for cell in cells:
            number = _num(cell)
            if number is None or number < 0 or not float(number).is_integer():
                raise ValueError(f"bad cell {cell!r}")
            counts.append(int(number))
    except (TypeError, ValueError) as exc:
        logger.warning("Ignoring malformed contingency table %r: %s", value, exc)
        return None
    a, b, c, d = counts
    return a, b, c, d


def _model_accuracy(model: Mapping[str, Any]) -> float | None:
    """Accuracy stored on a champion/challenger entry (top level or metrics)."""
    accuracy = _num(model.get("accuracy"))
    if accuracy is None:
        accuracy = _num(_sub(model, "metrics").get("accuracy"))
    return accuracy


def _version_label(model: Mapping[str, Any], fallback: str) -> str:
    """Short label such as ``v2`` for a model entry (plain text, not escaped)."""
    version = model.get("version")
    if version is None or version == "":
        return fallback
    return f"v{version}"


def wilson_interval(
    successes: int, n: int, confidence: float = _CONFIDENCE
) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion ``successes / n``.

    Wilson rather than the Wald interval because accuracies sit near 1 where
    Wald is too narrow and can exceed [0, 1].  Returns ``None`` for ``n == 0``.
    """
    if n <= 0:
        return None
    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


# --------------------------------------------------------------------------
# Number formatting shared by the figure and the page.
# --------------------------------------------------------------------------


def _fmt_p(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "n/a"
    if number == 0.0:
        return "0"
    # Tiny p-values are the normal case for clear wins; fixed point would show 0.
    if abs(number) < 1e-4:
        return f"{number:.2e}"
    return f"{number:.4f}"


def _fmt_float(value: Any, digits: int = 4) -> str:
    number = _num(value)
    if number is None:
        return "n/a"
    return f"{number:.{digits}f}"


def _fmt_int(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "n/a"
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def _fmt_g(value: Any) -> str:
    number = _num(value)
    return "n/a" if number is None else f"{number:g}"


def _fmt_signed(value: Any, digits: int = 4) -> str:
    number = _num(value)
    if number is None:
        return "n/a"
    return f"{number:+.{digits}f}"


def _decision_key(record: Mapping[str, Any]) -> str:
    decision = record.get("decision")
    return str(decision) if decision is not None else "unknown"


def _decision_label(record: Mapping[str, Any]) -> str:
    key = _decision_key(record)
    return _DECISION_LABELS.get(key, key)


# --------------------------------------------------------------------------
# contingency.png
# --------------------------------------------------------------------------


def _valid_comparisons(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    comparisons = record.get("comparisons")
    if not isinstance(comparisons, Sequence) or isinstance(comparisons, (str, bytes)):
        return []
    return [item for item in comparisons if isinstance(item, Mapping)]


def _is_selected(comparison: Mapping[str, Any], chosen: Any) -> bool:
    """The comparison's own ``selected`` flag if it has one (on a keep, the record's top-level
    challenger is the closest one, not a selected one), else whether it is that challenger."""
    if isinstance(comparison.get("selected"), bool):
        return comparison["selected"]
    return chosen is not None and str(comparison.get("version")) == str(chosen)


def _text_colour_on(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba``."""
    red, green, blue = rgba[:3]
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#1f2328" if luminance > 0.5 else "#ffffff"


def _draw_table(ax: Any, record: Mapping[str, Any], counts: tuple[int, int, int, int] | None) -> None:
    """Left panel: the 2x2 table as an annotated heatmap."""
    champion = _sub(record, "champion")
    challenger = _sub(record, "challenger")
    title = (
        f"Champion {_version_label(champion, 'n/a')} vs "
        f"challenger {_version_label(challenger, 'n/a')}"
        if champion and challenger
        else f"Champion {_version_label(champion, 'none')}, "
        f"challenger {_version_label(challenger, 'none')}"
    )
    if counts is None:
        ax.set_axis_off()
        ax.set_title(title, fontsize=12)
        ax.text(
            0.5,
            0.5,
            "No paired contingency table\n"
            f"(decision: {_decision_key(record)})",
            ha="center",
            va="center",
            fontsize=12,
            color=_NEUTRAL,
            transform=ax.transAxes,
            wrap=True,
        )
        return

    a, b, c, d = counts
    n = a + b + c + d
    grid = [[a, b], [c, d]]
    # Log colour scale: a usually dwarfs b and c by two orders of magnitude,
    # and a linear scale would paint the discordant cells blank.
    vmax = max(max(a, b, c, d), 2)
    image = ax.imshow(
        [[max(v, 1) for v in row] for row in grid],
        cmap="Greys",
        norm=LogNorm(vmin=1, vmax=vmax * 2.5),
        aspect="auto",
    )
    # No colour bar: the annotated counts carry the information.
    names = {(0, 0): "a", (0, 1): "b", (1, 0): "c", (1, 1): "d"}
    for (row, col), name in names.items():
        value = grid[row][col]
        share = f"{100.0 * value / n:.1f}%" if n else "n/a"
        discordant = name in ("b", "c")
        ax.text(
            col,
            row,
            f"{name} = {value:,}\n{share}",
            ha="center",
            va="center",
            fontsize=13 if discordant else 12,
            fontweight="bold" if discordant else "normal",
            color=_text_colour_on(image.cmap(image.norm(max(value, 1)))),
        )
    # Outline the discordant cells: McNemar's test uses only b and c.
    for (row, col), colour in (((0, 1), _B_COLOUR), ((1, 0), _C_COLOUR)):
        ax.add_patch(
            Rectangle(
                (col - 0.5 + 0.03, row - 0.5 + 0.03),
                0.94,
                0.94,
                fill=False,
                edgecolor=colour,
                linewidth=3,
            )
        )
    ax.set_xticks([0, 1], ["challenger right", "challenger wrong"], fontsize=11)
    ax.set_yticks([0, 1], ["champion right", "champion wrong"], fontsize=11)
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{title}   (n = {n:,})", fontsize=12, pad=12)
    ax.set_xlabel(
        "b: only champion right   c: only challenger right",
        fontsize=10,
        color=_NEUTRAL,
    )


def _draw_accuracies(
    ax: Any, record: Mapping[str, Any], counts: tuple[int, int, int, int] | None
) -> None:
    """Right panel: both accuracies with Wilson intervals, decision in title."""
    champion = _sub(record, "champion")
    challenger = _sub(record, "challenger")
    entries: list[tuple[str, str, float, tuple[float, float] | None]] = []
    if counts is not None:
        a, b, c, d = counts
        n = a + b + c + d
        if n:
            entries.append(
                (f"champion {_version_label(champion, '')}".strip(), _CHAMPION_COLOUR,
                 (a + b) / n, wilson_interval(a + b, n))
            )
            entries.append(
                (f"challenger {_version_label(challenger, '')}".strip(), _CHALLENGER_COLOUR,
                 (a + c) / n, wilson_interval(a + c, n))
            )
    else:
        # Without a paired table there are no counts for an interval; still
        # show whatever accuracies the record carries.
        for label, model, colour in (
            ("champion", champion, _CHAMPION_COLOUR),
            ("challenger", challenger, _CHALLENGER_COLOUR),
        ):
            accuracy = _model_accuracy(model)
            if accuracy is not None:
                entries.append(
                    (f"{label} {_version_label(model, '')}".strip(), colour, accuracy, None)
                )

    method = record.get("method")
    method_text = f" ({method})" if method else ""
    # Decisions without a test (no_challenger, bootstrap) have no p-value line.
    p_line = (
        f"\np = {_fmt_p(record.get('p_value'))}{method_text}"
        if _num(record.get("p_value")) is not None
        else ""
    )
    if p_line and len(_valid_comparisons(record)) >= 2 and _num(record.get("p_adjusted")) is not None:
        # Several challengers: the decision rests on the Holm-adjusted p of the one shown.
        p_line += (f"\nHolm-adjusted p = {_fmt_p(record.get('p_adjusted'))} "
                   f"({len(_valid_comparisons(record))} challengers)")
    dry = "  [dry run]" if record.get("dry_run") else ""
    ax.set_title(
        f"Decision: {_decision_label(record)}{dry}{p_line}",
        fontsize=12,
        color=_DECISION_COLOURS.get(_decision_key(record), _NEUTRAL),
        fontweight="bold",
    )
    if not entries:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No accuracies recorded", ha="center", va="center",
                fontsize=12, color=_NEUTRAL, transform=ax.transAxes)
        return

    lows: list[float] = []
    highs: list[float] = []
    for y, (label, colour, accuracy, interval) in enumerate(entries):
        if interval is not None:
            low, high = interval
            ax.errorbar(
                accuracy, y, xerr=[[accuracy - low], [high - accuracy]],
                fmt="o", color=colour, capsize=6, markersize=8, linewidth=2,
            )
            text = f"{accuracy:.4f}  [{low:.4f}, {high:.4f}]"
        else:
            low = high = accuracy
            ax.plot(accuracy, y, "o", color=colour, markersize=8)
            text = f"{accuracy:.4f}  (no interval)"
        lows.append(low)
        highs.append(high)
        ax.annotate(text, (accuracy, y), xytext=(0, 12), textcoords="offset points",
                    ha="center", fontsize=10, color=colour)
    span = max(highs) - min(lows)
    pad = max(span * 0.35, 0.02)
    ax.set_xlim(max(0.0, min(lows) - pad), min(1.0, max(highs) + pad))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.set_ylim(-0.7, len(entries) - 0.3)
    ax.set_yticks(range(len(entries)), [entry[0] for entry in entries], fontsize=11)
    if counts is not None:
        ax.set_xlabel(f"accuracy with Wilson {int(_CONFIDENCE * 100)}% interval", fontsize=11)
    else:
        ax.set_xlabel("recorded accuracy (no paired table, so no interval)", fontsize=11)
    ax.tick_params(axis="x", labelsize=10)
    ax.grid(axis="x", color="#d0d7de", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _comparison_accuracy(
    comparison: Mapping[str, Any],
) -> tuple[float | None, tuple[float, float] | None, int | None]:
    """Challenger accuracy, its Wilson interval and the champion's correct count."""
    counts = _table(comparison.get("table"))
    if counts is not None:
        a, b, c, d = counts
        n = a + b + c + d
        if n:
            return (a + c) / n, wilson_interval(a + c, n), a + b
    return _num(_sub(comparison, "metrics").get("accuracy")), None, None


def _draw_comparisons(
    ax: Any, record: Mapping[str, Any], comparisons: list[Mapping[str, Any]],
    counts: tuple[int, int, int, int] | None,
) -> None:
    """Bottom panel: every challenger's accuracy against the champion's.

    One point per challenger scales to any number of challengers, whereas one
    heatmap each stops being readable beyond three or four.
    """
    chosen = _sub(record, "challenger").get("version")
    champion = _sub(record, "champion")

    # Champion band from the main table if there is one, else from the first
    # comparison table (all comparisons share the champion and the test set).
    champion_acc: float | None = None
    champion_ci: tuple[float, float] | None = None
    if counts is not None and sum(counts):
        a, b, _, _ = counts
        n = sum(counts)
        champion_acc, champion_ci = (a + b) / n, wilson_interval(a + b, n)
    else:
        for comparison in comparisons:
            comp_counts = _table(comparison.get("table"))
            if comp_counts is not None and sum(comp_counts):
                a, b, _, _ = comp_counts
                n = sum(comp_counts)
                champion_acc, champion_ci = (a + b) / n, wilson_interval(a + b, n)
                break
        if champion_acc is None:
            champion_acc = _model_accuracy(champion)

    values: list[float] = []
    if champion_acc is not None:
        ax.axhline(champion_acc, color=_CHAMPION_COLOUR, linestyle="--", linewidth=1.5,
                   label=f"champion {_version_label(champion, '')} {champion_acc:.4f}")
        values.append(champion_acc)
        if champion_ci is not None:
            ax.axhspan(*champion_ci, color=_CHAMPION_COLOUR, alpha=0.12, linewidth=0)
            values.extend(champion_ci)

    labels: list[str] = []
    for x, comparison in enumerate(comparisons):
        version = comparison.get("version")
        labels.append(f"v{version}" if version not in (None, "") else f"#{x + 1}")
        accuracy, interval, _ = _comparison_accuracy(comparison)
        eligible = comparison.get("eligible") is True
        colour = "#1a7f37" if eligible else "#8c959f"
        is_chosen = _is_selected(comparison, chosen)
        marker = "*" if is_chosen else "o"
        size = 14 if is_chosen else 8
        if accuracy is None:
            ax.annotate("no data", (x, champion_acc or 0.0), ha="center", fontsize=9,
                        color=_NEUTRAL)
            continue
        if interval is not None:
            low, high = interval
            ax.errorbar(x, accuracy, yerr=[[accuracy - low], [high - accuracy]], fmt=marker,
                        color=colour, capsize=5, markersize=size, linewidth=1.8)
            values.extend(interval)
        else:
            ax.plot(x, accuracy, marker, color=colour, markersize=size)
            values.append(accuracy)
        p_adj = comparison.get("p_adjusted", comparison.get("p_value"))
        ax.annotate(f"p_adj = {_fmt_p(p_adj)}", (x, accuracy), xytext=(9, 0),
                    textcoords="offset points", va="center", fontsize=9, color=colour)

    ax.set_xticks(range(len(labels)), labels, fontsize=10,
                  rotation=45 if len(labels) > 8 else 0)
    ax.set_xlim(-0.6, len(labels) - 0.4 + 0.5)
    if values:
        pad = max((max(values) - min(values)) * 0.25, 0.005)
        ax.set_ylim(max(0.0, min(values) - pad), min(1.0, max(values) + pad))
    ax.set_ylabel("accuracy", fontsize=11)
    ax.set_title(
        f"All {len(comparisons)} challengers (green = eligible, star = selected, "
        "bars = Wilson 95%)",
        fontsize=12,
    )
    ax.grid(axis="y", color="#d0d7de", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if champion_acc is not None:
        ax.legend(loc="lower right", fontsize=9, frameon=False)


def render_contingency_png(record: Mapping[str, Any], path: Path) -> Path:
    """Draw the contingency figure for ``record`` and save it as a PNG at ``path``.

    Records without a (valid) table still produce a figure that says so, so
    the artifact set of a compare run is the same for every decision.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = _table(record.get("table"))
    comparisons = _valid_comparisons(record)
    several = len(comparisons) >= 2

    figure = Figure(figsize=(11.0, 8.4 if several else 4.6), dpi=_DPI)
    # Attach the Agg canvas explicitly: rendering without pyplot leaves the
    # process-wide backend untouched.
    FigureCanvasAgg(figure)
    if several:
        grid = figure.add_gridspec(2, 2, height_ratios=[1.0, 1.0], width_ratios=[1.0, 1.1])
        table_ax = figure.add_subplot(grid[0, 0])
        acc_ax = figure.add_subplot(grid[0, 1])
        comp_ax = figure.add_subplot(grid[1, :])
    else:
        table_ax, acc_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.1]})
        comp_ax = None

    _draw_table(table_ax, record, counts)
    _draw_accuracies(acc_ax, record, counts)
    if comp_ax is not None:
        _draw_comparisons(comp_ax, record, comparisons, counts)

    figure.tight_layout()
    figure.savefig(path, dpi=_DPI, format="png", facecolor="white")
    logger.info("Wrote contingency figure to %s", path)
    return path


# --------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328;
  font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 40px; background: #fff;
  min-height: 100vh; border-left: 1px solid #d0d7de; border-right: 1px solid #d0d7de; }
header { border-bottom: 1px solid #d0d7de; padding-bottom: 14px; margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0 0 6px; font-weight: 600; }
h2 { font-size: 17px; margin: 26px 0 8px; font-weight: 600; }
.badge { display: inline-block; padding: 2px 12px; border-radius: 999px; color: #fff;
  font-size: 14px; font-weight: 600; vertical-align: middle; margin-left: 8px; }
.dry { display: inline-block; padding: 2px 10px; border-radius: 999px; margin-left: 6px;
  border: 1px solid #9a6700; color: #9a6700; font-size: 13px; vertical-align: middle; }
.reason { font-size: 16px; margin: 6px 0 0; overflow-wrap: anywhere; }
.muted { color: #57606a; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.grid > section { flex: 1 1 420px; min-width: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #eaeef2;
  vertical-align: top; overflow-wrap: anywhere; }
thead th { background: #f6f8fa; border-bottom: 1px solid #d0d7de; font-weight: 600;
  overflow-wrap: normal; }
table.models { table-layout: fixed; }
table.models tbody th { width: 30%; }
tbody th { font-weight: 500; color: #57606a; white-space: nowrap; width: 38%; }
td.num { font-variant-numeric: tabular-nums; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 13px; }
tr.selected td { background: #ddf4ff; }
.yes { color: #1a7f37; font-weight: 600; }
.no { color: #57606a; }
p.note { color: #57606a; margin: 4px 0 10px; }
figure { margin: 18px 0 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 13px; margin-top: 6px; }
footer { margin-top: 28px; color: #57606a; font-size: 12px; border-top: 1px solid #d0d7de;
  padding-top: 10px; overflow-wrap: anywhere; }
"""


def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _text(value: Any) -> str:
    """Escaped text, with an em dash for absent values."""
    if value is None or value == "":
        return "&mdash;"
    return _e(value)


def _rows(pairs: Sequence[tuple[str, str, bool]]) -> str:
    """Key/value rows.  Values are pre-escaped HTML; labels are constants."""
    out = []
    for label, value_html, numeric in pairs:
        cls = ' class="num"' if numeric else ""
        out.append(f"<tr><th scope=\"row\">{_e(label)}</th><td{cls}>{value_html}</td></tr>")
    return "\n".join(out)


def _models_table(record: Mapping[str, Any], counts: tuple[int, int, int, int] | None) -> str:
    champion = _sub(record, "champion")
    challenger = _sub(record, "challenger")
    intervals: dict[str, str] = {"champion": "&mdash;", "challenger": "&mdash;"}
    if counts is not None and sum(counts):
        a, b, c, _ = counts
        n = sum(counts)
        for key, correct in (("champion", a + b), ("challenger", a + c)):
            interval = wilson_interval(correct, n)
            if interval is not None:
                intervals[key] = _e(f"[{interval[0]:.4f}, {interval[1]:.4f}]")

    metric_names: list[str] = []
    for model in (champion, challenger):
        for name in _sub(model, "metrics"):
            if name != "accuracy" and name not in metric_names:
                metric_names.append(str(name))

    def cell(model: Mapping[str, Any], key: str) -> str:
        return _text(model.get(key))

    # Only the models the record has get a column: no_challenger has no
    # challenger and bootstrap no champion, and a column of dashes is noise.
    columns = [(label, model) for label, model in (("Champion", champion),
               ("Challenger", challenger)) if model]
    if not columns:
        return '<p class="note">The record names no models.</p>'

    rows: list[tuple[str, list[str], bool]] = [
        ("Registered model", [cell(m, "name") for _, m in columns], False),
        ("Version", [cell(m, "version") for _, m in columns], False),
        ("Family", [cell(m, "family") for _, m in columns], False),
        ("Run ID", [cell(m, "run_id") for _, m in columns], True),
        ("Accuracy", [_e(_fmt_float(_model_accuracy(m))) for _, m in columns], True),
        ("Wilson 95% CI", [intervals[label.lower()] for label, _ in columns], True),
    ]
    for name in metric_names:
        rows.append((
            name, [_e(_fmt_float(_sub(m, "metrics").get(name))) for _, m in columns], True
        ))
    lines = []
    for label, values, numeric in rows:
        cls = ' class="num"' if numeric else ""
        cells = "".join(f"<td{cls}>{value}</td>" for value in values)
        lines.append(f'<tr><th scope="row">{_e(label)}</th>{cells}</tr>')
    body = "\n".join(lines)
    head = "".join(f"<th>{label}</th>" for label, _ in columns)
    return (
        f'<table class="models"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def _stats_table(record: Mapping[str, Any], counts: tuple[int, int, int, int] | None) -> str:
    # Prefer the record's own b, c, n; derive them from the table when absent.
    b_value = record.get("b")
    c_value = record.get("c")
    n_value = record.get("n")
    if counts is not None:
        b_value = counts[1] if b_value is None else b_value
        c_value = counts[2] if c_value is None else c_value
        n_value = sum(counts) if n_value is None else n_value

    p_values = _sub(record, "p_values")
    method = record.get("method")
    tested = counts is not None or any(
        _num(record.get(key)) is not None for key in ("p_value", "statistic", "b", "c")
    )
    if not tested:
        pairs_untested: list[tuple[str, str, bool]] = [
            ("alpha", _e(_fmt_g(record.get("alpha"))), True)
        ]
        policy = _sub(record, "policy")
        if policy:
            parts = [f"{key} = {value}" for key, value in policy.items() if value is not None]
            pairs_untested.append(("Policy", _text(", ".join(parts)), False))
        return (
            '<p class="note">No test was run: the record has no paired contingency '
            "table for this decision.</p>\n"
            f"<table><tbody>\n{_rows(pairs_untested)}\n</tbody></table>"
        )
    pairs: list[tuple[str, str, bool]] = [
        ("n (test rows)", _e(_fmt_int(n_value)), True),
        ("b (only champion right)", _e(_fmt_int(b_value)), True),
        ("c (only challenger right)", _e(_fmt_int(c_value)), True),
        ("McNemar method", _text(method), False),
        ("Statistic", _e(_fmt_float(record.get("statistic"), 4)), True),
        ("p-value", f"<strong>{_e(_fmt_p(record.get('p_value')))}</strong>", True),
        ("alpha", _e(_fmt_g(record.get("alpha"))), True),
    ]
    comparisons = _valid_comparisons(record)
    if _num(record.get("p_adjusted")) is not None and comparisons:
        pairs.insert(-1, (f"p adjusted ({record.get('correction') or 'holm'}, "
                          f"{len(comparisons)} challengers)",
                          f"<strong>{_e(_fmt_p(record.get('p_adjusted')))}</strong>", True))
    omnibus = _sub(record, "omnibus")
    if omnibus:
        pairs.append(("Cochran's Q (all models)",
                      _e(f"Q = {_fmt_float(omnibus.get('statistic'))}, df = "
                         f"{_fmt_int(omnibus.get('df'))}, p = {_fmt_p(omnibus.get('p_value'))}"),
                      True))
    known = list(_P_VALUE_METHODS) + [k for k in p_values if k not in _P_VALUE_METHODS]
    for name in known:
        if name in p_values:
            marker = " (used)" if method is not None and str(name) == str(method) else ""
            pairs.append((f"p ({name}){marker}", _e(_fmt_p(p_values.get(name))), True))

    delta = _sub(record, "delta")
    if delta:
        confidence = _num(delta.get("confidence"))
        level = f"{confidence * 100:g}% " if confidence is not None else ""
        low, high = delta.get("ci_low"), delta.get("ci_high")
        ci = (
            f" ({level}CI {_fmt_signed(low)} to {_fmt_signed(high)}"
            + (f", {delta.get('method')}" if delta.get("method") else "")
            + ")"
            if _num(low) is not None and _num(high) is not None
            else ""
        )
        metric = delta.get("metric") or "metric"
        pairs.append((f"Δ {metric} (challenger − champion)",
                      _e(f"{_fmt_signed(delta.get('value'))}{ci}"), True))

    policy = _sub(record, "policy")
    if policy:
        parts = [f"{key} = {value}" for key, value in policy.items() if value is not None]
        pairs.append(("Policy", _text(", ".join(parts)), False))
    return f"<table><tbody>\n{_rows(pairs)}\n</tbody></table>"


def _provenance_table(record: Mapping[str, Any]) -> str:
    test_set = _sub(record, "test_set")
    versions = _sub(record, "versions")
    pairs: list[tuple[str, str, bool]] = [
        ("Compare run ID", _text(record.get("run_id")), True),
        ("Test-set digest", _text(test_set.get("digest")), True),
        ("Test-set rows", _e(_fmt_int(test_set.get("n_rows"))), True),
        ("Test-set data run", _text(test_set.get("data_run_id")), True),
    ]
    for package in ("mlflow", "scikit-learn", "mlxtend"):
        pairs.append((package, _text(versions.get(package)), True))
    for package, version in versions.items():
        if package not in ("mlflow", "scikit-learn", "mlxtend"):
            pairs.append((str(package), _text(version), True))
    return f"<table><tbody>\n{_rows(pairs)}\n</tbody></table>"


def _comparisons_table(record: Mapping[str, Any], comparisons: list[Mapping[str, Any]]) -> str:
    chosen = _sub(record, "challenger").get("version")
    body = []
    for comparison in comparisons:
        counts = _table(comparison.get("table"))
        accuracy, interval, _ = _comparison_accuracy(comparison)
        version = comparison.get("version")
        eligible = comparison.get("eligible")
        if eligible is True:
            eligible_html = '<span class="yes">yes</span>'
        elif eligible is False:
            eligible_html = '<span class="no">no</span>'
        else:
            eligible_html = "&mdash;"
        interval_html = (
            _e(f" [{interval[0]:.4f}, {interval[1]:.4f}]") if interval is not None else ""
        )
        selected = _is_selected(comparison, chosen)
        row_class = ' class="selected"' if selected else ""
        body.append(
            f"<tr{row_class}><td>{_text(version)}{' (selected)' if selected else ''}</td>"
            f"<td class=\"num\">{_e(_fmt_float(accuracy))}{interval_html}</td>"
            f"<td class=\"num\">{_e(_fmt_int(counts[1])) if counts else '&mdash;'}</td>"
            f"<td class=\"num\">{_e(_fmt_int(counts[2])) if counts else '&mdash;'}</td>"
            f"<td class=\"num\">{_e(_fmt_p(comparison.get('p_value')))}</td>"
            f"<td class=\"num\">{_e(_fmt_p(comparison.get('p_adjusted')))}</td>"
            f"<td>{eligible_html}</td>"
            f"<td>{_text(comparison.get('why'))}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Version</th><th>Accuracy [Wilson 95%]</th><th>b</th>"
        "<th>c</th><th>p</th><th>p adjusted</th><th>Eligible</th><th>Why</th></tr></thead>"
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table>"
    )


def render_report_html(record: Mapping[str, Any], png_path: Path, path: Path) -> Path:
    """Write a self-contained HTML report for ``record`` to ``path``.

    The PNG at ``png_path`` is embedded as a base64 data URI and the CSS is
    inline, so the page renders offline and inside the MLflow artifact viewer
    without fetching anything.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png_b64 = base64.b64encode(Path(png_path).read_bytes()).decode("ascii")

    counts = _table(record.get("table"))
    comparisons = _valid_comparisons(record)
    decision_key = _decision_key(record)
    decision_label = _decision_label(record)
    colour = _DECISION_COLOURS.get(decision_key, _NEUTRAL)
    model_name = (
        record.get("registered_model_name")
        or _sub(record, "challenger").get("name")
        or _sub(record, "champion").get("name")
        or "model"
    )
    dry_html = '<span class="dry">dry run: nothing was changed</span>' if record.get("dry_run") else ""
    reason = record.get("reason")
    reason_html = (
        f'<p class="reason">{_e(reason)}</p>'
        if reason
        else '<p class="reason muted">No reason recorded.</p>'
    )

    if counts is not None:
        caption = (
            "Left: paired 2&times;2 table (rows champion, columns challenger); the outlined "
            "discordant cells b and c are the only ones McNemar&rsquo;s test uses. Right: "
            "accuracies with Wilson 95% intervals."
        )
    else:
        caption = "No paired table for this decision: only the recorded accuracies are shown."
    if len(comparisons) >= 2:
        caption += " Bottom: every challenger against the champion, with adjusted p-values."

    comparisons_html = ""
    if comparisons:
        comparisons_html = (
            f"<h2>All challengers ({len(comparisons)})</h2>\n"
            f"{_comparisons_table(record, comparisons)}\n"
        )

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(model_name)}: {_e(decision_label)} ({_e(decision_key)})</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<div class="muted">Model comparison report &middot; registered model <strong>{_e(model_name)}</strong></div>
<h1>Decision: {_e(decision_label)}<span class="badge" style="background:{colour}">{_e(decision_key)}</span>{dry_html}</h1>
{reason_html}
</header>
<div class="grid">
<section>
<h2>Models</h2>
{_models_table(record, counts)}
</section>
<section>
<h2>McNemar test</h2>
{_stats_table(record, counts)}
</section>
</div>
<figure>
<img src="data:image/png;base64,{png_b64}" alt="Contingency table and accuracies for {_e(model_name)}">
<figcaption>{caption}</figcaption>
</figure>
{comparisons_html}<h2>Provenance</h2>
{_provenance_table(record)}
<footer>Generated from the decision record (decision.json) of this compare run.</footer>
</main>
</body>
</html>
"""
    path.write_text(page, encoding="utf-8")
    logger.info("Wrote HTML report to %s", path)
    return path


def write_report(record: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write ``contingency.png`` and ``report.html`` into ``out_dir``.

    Returns both paths (PNG first) for the caller to ``mlflow.log_artifact``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path = render_contingency_png(record, out_dir / CONTINGENCY_FILENAME)
    html_path = render_report_html(record, png_path, out_dir / REPORT_FILENAME)
    return [png_path, html_path]
