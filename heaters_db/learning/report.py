"""`heaters-db report`: how each head version does on the sorters' held-out answers.

Per mode and head version (rejected ones too, marked), on the mode's *current* holdout events
(the split is fixed per anchor clip, so no version ever trained on them and all versions are
compared on the same events): the judged rank score on the evaluation screens (what the gate
decides on), the chosen clip's library percentile there and on all holdout events, triplet
accuracy, screen top-1, MRR, where training started (the PCA, or the head a warm start
continued), the numbers behind each stored gate decision (and any operator override), and the
kNN Jaccard@10 overlap with the previous version and with the base space over a fixed sample of
clips. The base space is the first row. A PNG plots the same numbers across versions
(matplotlib, the ``report`` extra; Agg backend, no display needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from heaters_db.errors import HeatersError
from heaters_db.heads.evaluation import (
    JACCARD_SAMPLE,
    holdout_metrics,
    neighbour_overlap,
    sample_rows,
    space_of,
    summarise,
)
from heaters_db.learning import store
from heaters_db.learning.data import (
    NoTrainingEvents,
    load_training_data,
    resolve_variant,
    stored_mode,
)

log = logging.getLogger(__name__)

MODES = ("trick_similarity", "spot_similarity")
METRICS = (
    ("evaluation_judged_rank", "judged rank score, evaluation screens"),
    ("evaluation_percentile", "library percentile, evaluation screens"),
    ("library_percentile", "library percentile, all holdout"),
    ("triplet_accuracy", "triplet accuracy"),
    ("screen_top1", "screen top-1"),
    ("mrr", "MRR (chosen clip)"),
    ("jaccard_previous", "kNN Jaccard@10 vs previous"),
    ("jaccard_base", "kNN Jaccard@10 vs base"),
)


class ReportError(HeatersError):
    """The quality report could not be made (e.g. matplotlib, the `report` extra, is missing)."""


@dataclass
class ModeReport:
    """One mode's rows: the base space first, then every head version."""

    mode: str
    holdout_events: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None


def _row(label: str, status: str, summary: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    summary = summary or {}
    return {
        "label": label,
        "status": status,
        "triplet_accuracy": summary.get("triplet_accuracy"),
        "screen_top1": summary.get("screen_top1"),
        "mrr": summary.get("mrr"),
        "library_percentile": summary.get("library_percentile"),
        "evaluation_percentile": summary.get("evaluation_percentile"),
        "evaluation_judged_rank": summary.get("evaluation_judged_rank"),
        "evaluation_events": summary.get("evaluation_events"),
        **extra,
    }


def _summary(metrics) -> dict[str, Any]:
    """summarise() plus the judged rank score (what the gate decides on) and the library
    percentile over the evaluation screens alone (what the gate judges when there are enough of
    them)."""
    summary = summarise(metrics)
    evaluation = summarise(metrics.take(metrics.evaluation))
    summary["evaluation_judged_rank"] = evaluation["judged_rank_score"]
    summary["evaluation_percentile"] = evaluation["library_percentile"]
    return summary


def gate_numbers(metrics: dict[str, Any]) -> str:
    """The numbers behind a stored gate decision, one line: what decided, on what, the intervals,
    and an operator's override."""
    gate = metrics.get("gate") or {}
    if not gate:
        return ""
    metric = gate.get("deciding_metric")
    parts = [f"{'passed' if gate.get('passed') else 'refused'}: {gate.get('reason', '')}"]
    # Each superiority test against the base at its own (Bonferroni) level; decisions stored
    # before those tests existed have the deciding metric's interval only.
    tests = gate.get("vs_base_tests") or {}
    compared = [("vs_base", name, test) for name, test in tests.items()]
    if not compared and metric:
        compared.append(("vs_base", metric, (gate.get("vs_base") or {}).get(metric)))
    if metric:
        compared.append(("vs_live", metric, (gate.get("vs_live") or {}).get(metric)))
    for side, name, result in compared:
        if result and result.get("interval"):
            low, high = result["interval"]
            level = result.get("one_sided_level")
            at = f" (one-sided {100 * level:g}%)" if level else ""
            parts.append(
                f"{side} {name} {result['difference']:+.3f} [{low:+.3f}, {high:+.3f}]{at} "
                f"over {result['events']} events / {result['anchors']} anchors"
            )
    override = metrics.get("override")
    if override:
        parts.append(f"OVERRIDDEN by {override.get('by')} at {override.get('at')}")
    return "; ".join(parts)


def training_start(metrics: dict[str, Any], versions: dict[int, int]) -> str:
    """Where a head's training started: "pca" (fresh), "v3" (a warm start from head v3), "v3
    held" (one held near v3 by the start pull, heads/capacity.py), "-" (heads stored before warm
    starts existed, or by other tools)."""
    training = metrics.get("training") or {}
    if training.get("start") == "warm":
        head_id = training.get("warm_start_head_id")
        start = f"v{versions[head_id]}" if head_id in versions else "warm"
        held = (metrics.get("config") or {}).get("start_decay") or 0
        return f"{start} held" if held > 0 else start
    return "pca" if training.get("start") == "pca" else "-"


def mode_report(conn: psycopg.Connection, mode: str) -> ModeReport | None:
    """The report rows of one mode (None when the mode has no heads and no events)."""
    mode = stored_mode(conn, mode)
    heads = store.list_heads(conn, mode)
    active = store.active_head(conn, mode)
    variant_id = (
        active.base_variant_id if active else (heads[-1].base_variant_id if heads else None)
    )
    try:
        loaded = load_training_data(
            conn, mode, resolve_variant(conn, variant_id), context_clips=JACCARD_SAMPLE
        )
    except NoTrainingEvents:
        if not heads:
            return None
        report = ModeReport(mode, 0, note="no sorting events to evaluate on; stored metrics shown")
        for head in heads:
            stored = head.metrics.get("holdout")
            report.rows.append(_row(f"v{head.version}", head.status, stored, head_id=head.id))
        return report

    sample = loaded.data.base_vectors[sample_rows(len(loaded.data.base_vectors))]
    base = _summary(holdout_metrics(space_of(None), loaded.data))
    report = ModeReport(mode, base["events"])
    report.rows.append(_row("base", "base", base, jaccard_previous=None, jaccard_base=1.0))
    previous_space = None
    versions = {head.id: head.version for head in heads}
    for head in heads:
        extra = {
            "head_id": head.id,
            "version": head.version,
            "start": training_start(head.metrics, versions),
            "trained_through_event_id": head.trained_through_event_id,
            "training_events": head.training_event_count,
            "gate": gate_numbers(head.metrics),
        }
        if head.base_variant_id != loaded.variant.id:
            report.rows.append(
                _row(f"v{head.version}", head.status, None, **extra, note="other base variant")
            )
            continue
        _, torch_head = store.load_projection_head(conn, head.id)
        space = space_of(torch_head)
        summary = _summary(holdout_metrics(space, loaded.data))
        extra["jaccard_base"] = neighbour_overlap(space, space_of(None), sample)
        extra["jaccard_previous"] = (
            neighbour_overlap(space, previous_space, sample) if previous_space is not None else None
        )
        report.rows.append(_row(f"v{head.version}", head.status, summary, **extra))
        previous_space = space
    return report


def build_report(
    connect: Callable[[], psycopg.Connection], mode: str | None = None
) -> list[ModeReport]:
    with connect() as conn:
        modes = [stored_mode(conn, mode)] if mode else list(MODES)
        reports = [mode_report(conn, m) for m in modes]
    return [r for r in reports if r is not None]


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_report(reports: list[ModeReport]) -> str:
    """The plain-text table `heaters-db report` prints."""
    if not reports:
        return "no projection heads and no sorting events yet"
    lines = []
    header = (
        f"{'version':<8} {'status':<10} {'eval judged':>11} {'eval pct':>8} {'lib pct':>7} {'triplet acc':>11} "
        f"{'top-1':>7} {'MRR':>7} "
        f"{'jaccard@10 prev':>15} {'jaccard@10 base':>15} {'from':>8}  gate"
    )
    for report in reports:
        evaluation = next((r.get("evaluation_events") for r in report.rows), None)
        lines.append(
            f"== {report.mode}: {report.holdout_events} holdout events "
            f"({evaluation or 0} evaluation screens)"
        )
        if report.note:
            lines.append(f"   ({report.note})")
        lines.append(header)
        for row in report.rows:
            lines.append(
                f"{row['label']:<8} {row['status']:<10} {_number(row['evaluation_judged_rank']):>11} "
                f"{_number(row['evaluation_percentile']):>8} "
                f"{_number(row['library_percentile']):>7} {_number(row['triplet_accuracy']):>11} "
                f"{_number(row['screen_top1']):>7} {_number(row['mrr']):>7} "
                f"{_number(row.get('jaccard_previous')):>15} {_number(row.get('jaccard_base')):>15} "
                f"{row.get('start') or '-':>8}  "
                f"{row.get('gate') or ''}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def plot_report(reports: list[ModeReport], output: Path) -> Path:
    """A PNG: one row of panels per mode, one panel per metric, versions on the x axis."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise ReportError(
            "the report plot needs matplotlib: pip install 'heaters-db[report]'"
        ) from exc
    colours = {
        "active": "tab:green",
        "retired": "tab:blue",
        "candidate": "tab:orange",
        "rejected": "tab:red",
        "training": "tab:gray",
    }
    rows = max(len(reports), 1)
    figure, axes = plt.subplots(
        rows, len(METRICS), figsize=(4 * len(METRICS), 3.2 * rows), squeeze=False
    )
    for line, report in enumerate(reports):
        heads = [r for r in report.rows if r["status"] != "base"]
        base = next((r for r in report.rows if r["status"] == "base"), None)
        for column, (key, title) in enumerate(METRICS):
            axis = axes[line][column]
            points = [
                (r["version"], r[key], r["status"])
                for r in heads
                if r.get(key) is not None and "version" in r
            ]
            if points:
                axis.plot([p[0] for p in points], [p[1] for p in points], color="0.6", zorder=1)
                axis.scatter(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    c=[colours.get(p[2], "black") for p in points],
                    zorder=2,
                )
            if base is not None and base.get(key) is not None and key != "jaccard_base":
                axis.axhline(base[key], linestyle="--", color="0.3", label="base space")
            axis.set_title(f"{report.mode.removesuffix('_similarity')}: {title}", fontsize=9)
            axis.set_xlabel("head version")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            versions = [r["version"] for r in heads if "version" in r]
            if versions:
                axis.set_xlim(min(versions) - 0.5, max(versions) + 0.5)
            axis.set_ylim(-0.02, 1.02)
            axis.grid(alpha=0.3)
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=c, label=s) for s, c in colours.items()
    ]
    handles.append(plt.Line2D([], [], linestyle="--", color="0.3", label="base space"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    log.info("wrote report plot", extra={"action": "report_plot", "path": str(output)})
    return output
