"""The gate: whether a newly trained head may serve a mode.

What it judges on: the holdout events' evaluation screens (uniform anchors, candidates drawn
without the live head: ``next_anchors`` reason ``evaluation`` + ``evaluation_candidates``), whose
anchors no head ever trained on (the split is fixed per anchor). Only when a mode has fewer than
``min_events`` such screens (clients that do not record provenance) does it judge on all holdout
events, and its reason says so; there the candidates were the serving space's nearest clips, the
library ranks saturate, and the weighted triplet accuracy over what was shown decides.

The metric: per event, the *judged rank score* in the space (metrics.evaluate_events): the
chosen clip's top-rank score 1 / (1 + R / 10), R its estimated rank in the whole library, and
one minus the mean score of the clips the sorter marked clearly wrong, half each when both
exist. Unlike screen top-1 it stays informative when several shown clips are equally right and
cannot saturate while a better head is still possible; unlike the library percentile (kept in
the metrics) it weighs the top of the ranking, which is what ``similar_clips`` serves: a head
that orders the bulk of the library better but puts wrong clips in the top 10 does not win on
it. A "none similar" screen with clips marked wrong is judged too.

The rule, on paired per-event differences with a bootstrap that resamples *anchors* (events of
one anchor are not independent), percentile intervals at (1 - alpha) = 90 %: both questions are
one-sided (better than the base? not worse than the live head by more than the margin?), so
each is decided on the interval's lower end, a one-sided 95 % bound (the question against the
base splits that 5 % over two metrics, item 2). The upper end is kept in the metrics and the
report.

1. too few judged events (< min_events with a selection or a clip marked wrong) -> refused;
2. against the base space: superiority, shown on the judged rank score *or* on the library
   percentile (the chosen clip's percentile in a sample of the whole library), each at half
   the level (a Bonferroni split: one-sided 97.5 % bounds, so the chance that a head no better
   than the base passes on either stays at most 5 %). A head fitted to random answers gains
   nothing on honest screens and is refused (a head exactly as good as the base passes about
   one round in twenty: 5-8 % in tests/unit/test_gate.py's simulation, the percentile
   bootstrap being a little narrow on few anchors). The percentile is the more powerful
   of the two where a head has improved the whole ranking of a weak-trick library before its
   top 10 (the judged rank score weighs the top): there it put a head 0.2 of recall above the
   base beyond noise (+0.21, 90 % interval [+0.08, +0.35], on 11 selections) that the judged
   rank score alone could not (+0.038 [-0.006, +0.081]) for two rounds running;
3. against the live head (when there is one): the new head must differ from it (a warm start
   that training left at its epoch 0 *is* the live head: serving it again would only redo the
   re-projection), be trained on events the live head was not (sorting events newer than its
   watermark: a count of events would refuse every head after clips, and with them their
   events, were deleted), be non-inferior (the lower bound of (new - live)
   above ``-margin``) and not measured worse (the mean difference at least zero). Ties go to
   the newer head, so a saturated holdout never freezes the first good head; a head the judged
   screens put below the live one does not replace it, however wide the interval. The two
   "nothing new" reasons are given before any measured one: they do not depend on the screens,
   so a stale retrain is refused as stale whatever noise its measurement carries.

The margin (``gate_noninferiority_margin``, 0.05) is not tighter because a tighter one was
measured not to help: on the learning-curve matrix 0.02 still let one drop through (a head 0.09
of recall worse that every evaluation metric rated level with the live one, judged +0.004
[-0.018, +0.027] on 37 screens: more than the screens can resolve, whatever the margin) and it
cost 0.026 of served recall after 300 screens by holding better heads back.

Against the live head the level is one-sided 95 % because the two-sided 95 % interval (a
one-sided 97.5 % bound) was measured to hold good heads back (when it was also the test
against the base, on the judged rank score alone): on the learning-curve matrix it refused 21 heads as "does not
beat the base space", about 10 of them 0.12-0.36 of recall above the base, one two rounds
running (a lagging round); at 95 % one-sided those refusals fell to 13, the lagging round went,
the drops stayed (1, the same run), and served recall after 100 screens rose from 0.639 to
0.657 (after 300: 0.797 -> 0.794).

Triplet accuracy, screen top-1, MRR and the top-rank score are computed for the same events
and kept in the metrics (and `heaters-db report`), but do not decide; the library percentile
decides only against the base (against the live head the top of the ranking is what matters).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heaters_db.errors import HeatersError
from heaters_db.heads.metrics import METRIC_NAMES, EventMetrics

log = logging.getLogger(__name__)

MIN_EVENTS = 8
DEFAULT_MARGIN = 0.05
DECIDING_METRIC = "judged_rank_score"
SUPERIORITY_METRICS = (DECIDING_METRIC, "library_percentile")
"""What "beats the base space" may be shown on (evaluation screens): the judged rank score, or
the library percentile, which has more power on libraries whose heads improve the whole ranking
before the top 10 (see the module docstring)."""
FALLBACK_METRIC = "triplet_accuracy"
_BOOTSTRAP_CHUNK = 250  # resamples per chunk: bounds memory at chunk x anchors


class GateInputError(HeatersError):
    """The gate was given per-event metrics for two different sets of holdout events."""


@dataclass
class GateDecision:
    """Whether the head may go live, why, and the numbers (JSON-ready for projection_heads.metrics)."""

    passed: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


def paired_bootstrap_interval(
    differences: np.ndarray,
    n_boot: int,
    alpha: float,
    rng: np.random.Generator,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of paired differences, resampling
    whole groups (anchors) when ``groups`` is given, single differences otherwise."""
    differences = np.asarray(differences, dtype=np.float64)
    if groups is None:
        sums, counts = differences, np.ones(len(differences))
    else:
        _, index = np.unique(np.asarray(groups), return_inverse=True)
        sums = np.bincount(index, weights=differences)
        counts = np.bincount(index).astype(np.float64)
    n = len(sums)
    means = np.empty(n_boot)
    for start in range(0, n_boot, _BOOTSTRAP_CHUNK):
        count = min(_BOOTSTRAP_CHUNK, n_boot - start)
        drawn = rng.integers(0, n, size=(count, n))
        means[start : start + count] = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def compare(
    new: EventMetrics,
    other: EventMetrics,
    n_boot: int,
    alpha: float,
    seed: int,
    names: tuple[str, ...] = METRIC_NAMES,
) -> dict[str, Any]:
    """Mean of each metric in ``names`` in both spaces, and the anchor-bootstrap interval of the
    paired difference, over the events where both define it."""
    out: dict[str, Any] = {}
    for offset, name in enumerate(names):
        a = np.asarray(getattr(new, name), dtype=np.float64)
        b = np.asarray(getattr(other, name), dtype=np.float64)
        defined = ~np.isnan(a) & ~np.isnan(b)
        result: dict[str, Any] = {
            "events": int(defined.sum()),
            "anchors": int(len(np.unique(np.asarray(new.anchors)[defined]))),
            "new": None,
            "baseline": None,
            "difference": None,
            "interval": None,
        }
        if defined.any():
            differences = a[defined] - b[defined]
            result.update(
                new=_number(a[defined].mean()),
                baseline=_number(b[defined].mean()),
                difference=_number(differences.mean()),
                interval=list(
                    paired_bootstrap_interval(
                        differences,
                        n_boot,
                        alpha,
                        np.random.default_rng(seed + offset),
                        np.asarray(new.anchors)[defined],
                    )
                ),
            )
        out[name] = result
    return out


def _describe(result: dict[str, Any]) -> str:
    if result["interval"] is None:
        return "no events"
    low, high = result["interval"]
    return (
        f"{result['new']:.3f} vs {result['baseline']:.3f}, "
        f"difference {result['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"
    )


def superiority_tests(
    new: EventMetrics,
    base: EventMetrics,
    names: tuple[str, ...],
    n_boot: int,
    alpha: float,
    seed: int,
    min_events: int,
) -> dict[str, dict[str, Any]]:
    """The superiority-over-the-base test on each metric in ``names``, Bonferroni-split: each at
    one-sided level alpha / 2 / len(names) (its interval at alpha / len(names)), so the chance
    that a head no better than the base passes on any of them stays at most the one-sided
    alpha / 2 (for the head "passes if any beats the base", Holm's procedure gives the same
    answer). A metric with fewer events than the gate's minimum cannot pass on its own."""
    share = alpha / len(names)
    result = compare(new, base, n_boot, share, seed, names)
    return {
        name: {
            "metric": name,
            **numbers,
            "one_sided_level": round(1 - share / 2, 6),
            "beats_base": bool(
                numbers["interval"] is not None
                and numbers["events"] >= min_events
                and numbers["interval"][0] > 0
            ),
        }
        for name, numbers in result.items()
    }


def _describe_tests(tests: Any) -> str:
    return "; ".join(
        f"{test['metric'].replace('_', ' ')} {_describe(test)} at one-sided "
        f"{round(100 * test['one_sided_level'], 4)}%"
        for test in tests
    )


def _paired(new: EventMetrics, other: EventMetrics) -> tuple[EventMetrics, EventMetrics]:
    new_ids, other_ids = np.asarray(new.event_ids), np.asarray(other.event_ids)
    if not np.array_equal(np.sort(new_ids), np.sort(other_ids)):
        raise GateInputError("the new and baseline metrics cover different holdout events")
    return new.take(np.argsort(new_ids)), other.take(np.argsort(other_ids))


def judged_events(
    metrics: EventMetrics, min_events: int = MIN_EVENTS
) -> tuple[np.ndarray, str, str]:
    """Which events the gate judges, how that is described, and the deciding metric: the
    evaluation screens judged (a selection or a clip marked wrong) when there are at least
    ``min_events`` of them (judged rank score), else every holdout event (clients without
    provenance). Then the candidates were the serving space's nearest clips, which that space
    already ranks near the top of the library (the ranks saturate), so the weighted triplet
    accuracy over what was shown decides."""
    chosen = ~np.isnan(np.asarray(getattr(metrics, DECIDING_METRIC), dtype=np.float64))
    evaluation = np.asarray(metrics.evaluation, dtype=bool)
    if int((evaluation & chosen).sum()) >= min_events:
        return evaluation, "evaluation screens", DECIDING_METRIC
    return (
        np.ones(len(evaluation), dtype=bool),
        f"all holdout events (fewer than {min_events} judged evaluation screens: "
        "candidates shaped by the serving space)",
        FALLBACK_METRIC,
    )


def gate(
    new_per_event: EventMetrics,
    baseline_per_event: EventMetrics,
    live_per_event: EventMetrics | None = None,
    *,
    new_training_events: int | None = None,
    live_training_events: int | None = None,
    events_new_to_live: int | None = None,
    unchanged: bool = False,
    margin: float = DEFAULT_MARGIN,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.10,  # a 90 % interval: its lower end is the one-sided 95 % bound
    min_events: int = MIN_EVENTS,
) -> GateDecision:
    """Decide whether the new head may serve: superior to the base space beyond noise and, when a
    head is live, trained on events it was not and not worse than it by more than ``margin``.

    The three EventMetrics must cover the same holdout events (evaluation.common_events).
    ``unchanged``: the new head has the live head's weights (e.g. a warm start stopped at
    epoch 0). ``events_new_to_live``: the new head's training and validation events newer than
    the live head's watermark (None: not known, not judged); ``new_training_events`` and
    ``live_training_events`` are kept in the metrics for the report.
    """
    new, base = _paired(new_per_event, baseline_per_event)
    live = None
    if live_per_event is not None:
        new, live = _paired(new, live_per_event)
        _, base = _paired(new, base)
    keep, judged_on, metric = judged_events(new, min_events)
    new, base = new.take(keep), base.take(keep)
    vs_base = compare(new, base, n_boot, alpha, seed)
    vs_live = compare(new, live.take(keep), n_boot, alpha, seed + 10) if live else None
    deciding = vs_base[metric]
    name = metric.replace("_", " ")
    confidence = round(100 * (1 - alpha), 6)
    one_sided = round(100 * (1 - alpha / 2), 6)
    base_metrics = SUPERIORITY_METRICS if metric == DECIDING_METRIC else (metric,)
    base_tests = superiority_tests(new, base, base_metrics, n_boot, alpha, seed + 20, min_events)
    beaten_on = [test for test in base_tests.values() if test["beats_base"]]

    selected = vs_base[DECIDING_METRIC]["events"]
    # "Nothing new" comes first: it does not depend on the screens, so a retrain with nothing
    # new is refused for that reason whatever noise its measurement carries.
    if vs_live is not None and events_new_to_live is not None and events_new_to_live <= 0:
        passed, reason = (
            False,
            (
                "trained on no event the live head was not: no training or validation event is "
                f"newer than the live head's ({new_training_events} events in all, holdout "
                f"included; the live head {live_training_events}): nothing new to learn from"
            ),
        )
    elif vs_live is not None and unchanged:
        passed, reason = (
            False,
            (
                "the live head unchanged: training left the live head's weights as they were "
                "(a warm start whose best epoch was 0), so there is nothing new to serve"
            ),
        )
    elif selected < min_events or deciding["events"] < min_events:
        passed, reason = (
            False,
            (
                f"too few judged events: {min(selected, deciding['events'])} with a selection or "
                f"a clip marked wrong on {judged_on}, at least {min_events} needed"
            ),
        )
    elif not beaten_on:
        passed, reason = (
            False,
            (
                f"does not beat the base space beyond noise on {judged_on} "
                f"({_describe_tests(base_tests.values())})"
            ),
        )
    elif vs_live is None:
        passed, reason = (
            True,
            (f"beats the base space beyond noise on {judged_on} ({_describe_tests(beaten_on)})"),
        )
    elif vs_live[metric]["difference"] < 0:
        passed, reason = (
            False,
            (
                f"measured worse than the live head on {judged_on} "
                f"({name} {_describe(vs_live[metric])})"
            ),
        )
    elif vs_live[metric]["interval"][0] <= -margin:
        passed, reason = (
            False,
            (
                f"may be worse than the live head by more than the margin {margin} on {judged_on} "
                f"({name} {_describe(vs_live[metric])})"
            ),
        )
    else:
        passed, reason = (
            True,
            (
                f"beats the base space ({_describe_tests(beaten_on)}) and is at least as good as "
                f"the live head, within the margin {margin} "
                f"({name} {_describe(vs_live[metric])}) on {judged_on}; ties go to the newer head"
            ),
        )

    metrics = {
        "passed": passed,
        "reason": reason,
        "deciding_metric": metric,
        "rule": (
            "anchor-resampled paired bootstrap; vs base: the one-sided "
            f"{round(100 * (1 - alpha / 2 / len(base_metrics)), 6)}% lower bound above 0 on any "
            f"of {', '.join(base_metrics)} (Bonferroni over {len(base_metrics)}); vs live head "
            f"(if any) on {metric}, {confidence}% interval whose lower end is the one-sided "
            f"{one_sided}% bound: changed, trained on events the live head was not, mean "
            "difference >= 0 and "
            f"lower bound > -{margin}"
        ),
        "judged_on": judged_on,
        "judged_events": int(keep.sum()),
        "evaluation_events": int(np.sum(np.asarray(new.evaluation))),
        "events": len(new_per_event.event_ids),
        "n_boot": n_boot,
        "alpha": alpha,
        "seed": seed,
        "min_events": min_events,
        "margin": margin,
        "new_training_events": new_training_events,
        "live_training_events": live_training_events,
        "events_new_to_live": events_new_to_live,
        "unchanged": unchanged,
        "vs_base": vs_base,
        "vs_base_tests": base_tests,
        "vs_live": vs_live,
    }
    log.info(
        "projection head gate",
        extra={
            "action": "head_gate",
            "passed": passed,
            "reason": reason,
            "events": int(keep.sum()),
        },
    )
    return GateDecision(passed=passed, reason=reason, metrics=metrics)
