"""The tables, verdicts and PNG of benchmarks/learning_curves.py, from its runs (also from the
JSON of an interrupted matrix: `learning_curves.py --summarise FILE`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

POLICIES = ("next_anchors", "random")
CHECKPOINTS = (50, 100, 200, 300)
TARGET_GAIN = 0.25  # the served-recall target: the library's base recall + this
LEARNED_GAIN = 0.2  # a trained head this much above the base must be served within one round
DROP = 0.02
PAIRED_CONFIDENCE = 0.90  # the policies' paired comparison: a two-sided 90 % bootstrap interval
BOOTSTRAP_RESAMPLES = 10_000


def served_at(curve: list[dict], screens: int) -> float | None:
    points = [p for p in curve if p["screens"] <= screens]
    return points[-1]["served"] if points and points[-1]["screens"] == screens else None


def screens_to(curve: list[dict], target: float) -> int | None:
    return next((p["screens"] for p in curve if p["served"] >= target), None)


def drops(run: dict) -> list[int]:
    """Rounds where served recall fell by more than DROP since the round before."""
    curve = run["curve"]
    pairs = zip(curve, curve[1:], strict=False)
    return [b["screens"] for a, b in pairs if b["served"] < a["served"] - DROP]


def lagging(run: dict) -> list[tuple[int, float, float]]:
    """(round, learned, best served this round or the next) wherever the head trained in a round
    beat the base by LEARNED_GAIN and served recall was not within DROP of base + LEARNED_GAIN
    by the next round."""
    curve, base, out = run["curve"], run["base"], []
    for i, point in enumerate(curve):
        if point.get("learned") is not None and point["learned"] >= base + LEARNED_GAIN:
            served = max(p["served"] for p in curve[i : i + 2])
            if served < base + LEARNED_GAIN - DROP:
                out.append((point["screens"], point["learned"], served))
    return out


def interval(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    low, mid, high = np.percentile(values, [10, 50, 90])
    return f"{mid:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _group(runs: list[dict], name: str, policy: str) -> list[dict]:
    return sorted(
        (r for r in runs if r["generator"] == name and r["policy"] == policy),
        key=lambda r: r["seed"],
    )


def target(base: float) -> float:
    """The served-recall target: base + TARGET_GAIN, or half the way from the base to 1 when
    that is nearer (a base of 0.76 would otherwise ask for a recall above 1)."""
    return min(base + TARGET_GAIN, base + (1.0 - base) / 2)


def _to_target(run: dict) -> tuple[int, bool]:
    """Screens until served recall reached the run's target (the budget if never)."""
    reached = screens_to(run["curve"], target(run["base"]))
    return (run["screens"], False) if reached is None else (reached, True)


def _paired_runs(runs: list[dict]) -> list[tuple[dict, dict]]:
    """(next_anchors run, random run) of every library and seed that has both."""
    random_runs = {(r["generator"], r["seed"]): r for r in runs if r["policy"] == "random"}
    return [
        (r, random_runs[(r["generator"], r["seed"])])
        for r in runs
        if r["policy"] == "next_anchors" and (r["generator"], r["seed"]) in random_runs
    ]


def _curve_mean(run: dict) -> float:
    """Served recall averaged over every round after the start: the area under the curve."""
    return float(np.mean([p["served"] for p in run["curve"][1:]]))


def mean_with_interval(differences: list[float], seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): a percentile bootstrap over the pairs at PAIRED_CONFIDENCE, seeded so
    a summary repeats. Each pair is one library and seed, run under both policies."""
    values = np.asarray(differences, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (BOOTSTRAP_RESAMPLES, len(values)))].mean(axis=1)
    tail = (1 - PAIRED_CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def policy_comparison(runs: list[dict], checkpoints: list[int]) -> tuple[list[str], str]:
    """Lines comparing the policies on the same libraries and seeds (next_anchors - random
    served recall, at each checkpoint and over the whole curve), and which one is the best
    measured: the one whose whole-curve interval lies above zero, else "level"."""
    pairs = _paired_runs(runs)
    if len(pairs) < 2:
        return [], "not measured"
    cells = []
    for at in checkpoints:
        both = [(served_at(a["curve"], at), served_at(b["curve"], at)) for a, b in pairs]
        differences = [x - y for x, y in both if x is not None and y is not None]
        if len(differences) >= 2:
            mean, low, high = mean_with_interval(differences)
            cells.append(f"after {at} {mean:+.3f} [{low:+.3f}, {high:+.3f}]")
    mean, low, high = mean_with_interval([_curve_mean(a) - _curve_mean(b) for a, b in pairs])
    best = "next_anchors" if low > 0 else "random" if high < 0 else "level"
    confidence = f"{PAIRED_CONFIDENCE:.0%}"
    lines = [
        f"Policies paired by library and seed (next_anchors - random served recall, mean over "
        f"{len(pairs)} pairs, {confidence} bootstrap interval over the pairs): "
        + ", ".join(cells)
        + f"; over the whole curve (every round's served recall averaged) {mean:+.3f} "
        f"[{low:+.3f}, {high:+.3f}]. Best measured: "
        + (
            f"{best} (the whole-curve interval excludes zero)."
            if best != "level"
            else "neither (the whole-curve interval includes zero: level)."
        )
    ]
    return lines, best


def _by_command(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs of each command: a matrix can be run as several processes side by side (e.g.
    one per group of seeds, each run has its own cluster) and their --json files joined."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(run["command"], []).append(run)
    return groups


def _commands(runs: list[dict]) -> str:
    groups = _by_command(runs)
    if len(groups) == 1:
        return f"`benchmarks/learning_curves.py {runs[-1]['command']}`"
    return (
        " and ".join(
            f"`benchmarks/learning_curves.py {command}` ({len(group)} runs)"
            for command, group in groups.items()
        )
        + ", side by side, their --json files joined"
    )


def _wall_time(runs: list[dict]) -> str:
    """Each process's wall time: its last run's running total."""
    times = [group[-1]["seconds"] / 60 for group in _by_command(runs).values()]
    return " and ".join(f"{t:.1f}" for t in times) + " min of wall time"


def _head_settings(runs: list[dict]) -> str:
    """The head settings the runs trained with (recorded per run; older files: not recorded)."""
    recorded = {tuple(sorted(r["head_settings"].items())) for r in runs if r.get("head_settings")}
    if not recorded:
        return "head settings not recorded"
    return " / ".join(", ".join(f"{k} {v}" for k, v in group) for group in sorted(recorded))


def summarise(runs: list[dict], generators: list[str], seeds: list[int]) -> str:
    last = runs[-1]
    complete = len(runs) == len(generators) * len(seeds) * len(POLICIES)
    checkpoints = [c for c in CHECKPOINTS if c <= last["screens"]]
    rounds = sorted({p["screens"] for r in runs for p in r["curve"][1:]})
    lines = [
        f"{_commands(runs)} -- {last['clips']} clips per "
        f"library, seeds {', '.join(map(str, seeds))}, {last['screens']} screens, a training "
        f"run every {last['round']} screens, {_head_settings(runs)} (0 = shaped by the "
        f"validation fold), {len(runs)} runs"
        + ("" if complete else " (an interrupted matrix)")
        + f", {_wall_time(runs)}. Machine: {last['machine']}; "
        f"{last['versions']}.",
        "",
        "Served recall@10 of same-trick clips (similar_clips over every clip), median [10th, "
        f"90th percentile] over seeds. Target: each library's base recall + {TARGET_GAIN}, or "
        "half the way from the base to 1 when that is nearer; "
        "screens to target: median over seeds (a run that never reached it counts as the "
        f"budget, and is counted). Drops: rounds where served recall fell by more than {DROP}. "
        f"Lagging: rounds whose trained head beat the base by {LEARNED_GAIN} while served recall "
        "had not followed by the next round.",
        "",
        "| library | policy | base | "
        + " | ".join(f"after {c}" for c in checkpoints)
        + " | screens to target | never reached | drops > 0.02 | lagging |",
        "|---|---|---|" + "---|" * len(checkpoints) + "---|---|---|---|",
    ]
    verdicts, lag_details = [], []
    for name in generators:
        for policy in POLICIES:
            group = _group(runs, name, policy)
            if not group:
                continue
            reached = [_to_target(r) for r in group]
            cells = [
                interval([v for r in group if (v := served_at(r["curve"], c)) is not None])
                for c in checkpoints
            ]
            lines.append(
                f"| {name} | {policy} | {interval([r['base'] for r in group])} | "
                + " | ".join(cells)
                + f" | {np.median([s for s, _ in reached]):.0f} "
                f"| {sum(not ok for _, ok in reached)}/{len(group)} "
                f"| {sum(len(drops(r)) for r in group)} | {sum(len(lagging(r)) for r in group)} |"
            )
            lag_details += [
                f"{name} / {policy} seed {r['seed']} at {at}: learned {learned:.2f}, served "
                f"{served:.2f} (base {r['base']:.2f})"
                for r in group
                for at, learned, served in lagging(r)
            ]
        pairs = {
            (a["seed"]): (_to_target(a)[0], _to_target(b)[0])
            for a in _group(runs, name, "next_anchors")
            for b in _group(runs, name, "random")
            if a["seed"] == b["seed"]
        }
        if pairs:
            ratios = [n / r for n, r in pairs.values()]
            median = float(np.median(ratios))
            verdicts.append(
                f"- {name}: next_anchors / random screens to target, per seed "
                f"{', '.join(f'{n}/{r}' for n, r in pairs.values())}; ratio median {median:.2f} "
                f"[{min(ratios):.2f}, {max(ratios):.2f}] over {len(ratios)} seeds: "
                + ("at most half" if median <= 0.5 else "NOT at most half")
            )
    lines += [
        "",
        "Learned (exact recall@10 of the head trained that round, served or not) / served, "
        "medians over seeds:",
        "",
        "| library | policy | " + " | ".join(str(r) for r in rounds) + " |",
        "|---|---|" + "---|" * len(rounds),
    ]
    for name in generators:
        for policy in POLICIES:
            group = _group(runs, name, policy)
            if not group:
                continue
            cells = []
            for at in rounds:
                points = [p for r in group for p in r["curve"] if p["screens"] == at]
                learned = [p["learned"] for p in points if p["learned"] is not None]
                served = [p["served"] for p in points]
                cells.append(
                    (f"{np.median(learned):.2f}" if learned else "-")
                    + " / "
                    + (f"{np.median(served):.2f}" if served else "-")
                )
            lines.append(f"| {name} | {policy} | " + " | ".join(cells) + " |")
    comparison, best = policy_comparison(runs, checkpoints)
    met = sum("NOT" not in v for v in verdicts)
    total_drops = sum(len(drops(r)) for r in runs)
    first_live = sum(len(r["curve"]) > 1 and r["curve"][1]["status"] == "active" for r in runs)
    lines += [
        "",
        "Verdict (goal: next_anchors needs at most half the screens of random to the target):",
        *verdicts,
        "",
        *comparison,
        "",
        "Lagging rounds: " + ("; ".join(lag_details) if lag_details else "none") + ".",
        "",
        "Drops, with what the gate measured against the live head: "
        + ("; ".join(drop_details(runs)) or "none")
        + ".",
        "",
        f"Reading: the goal is met on {met} of {len(verdicts)} libraries. Served recall fell by "
        f"more than {DROP} in {total_drops} round{'s' * (total_drops != 1)} over {len(runs)} runs "
        + ("(requirement met)" if total_drops == 0 else "(requirement NOT met)")
        + f", and lagged the trained heads in {len(lag_details)} "
        f"round{'s' * (len(lag_details) != 1)} "
        + ("(requirement met)." if not lag_details else "(requirement NOT met).")
        + f" The first round's head went live in {first_live} of {len(runs)} runs."
        + (f" Best measured anchor policy: {best}." if comparison else ""),
    ]
    return "\n".join(lines)


def drop_details(runs: list[dict]) -> list[str]:
    """Each drop with the gate's deciding difference against the live head and its interval
    (runs recorded before the gate numbers were kept show only the recall)."""
    out = []
    for run in runs:
        curve = run["curve"]
        for before, after in zip(curve, curve[1:], strict=False):
            if after["served"] >= before["served"] - DROP:
                continue
            text = (
                f"{run['generator']} / {run['policy']} seed {run['seed']} at {after['screens']}: "
                f"{before['served']:.2f} -> {after['served']:.2f}"
            )
            against_live = (after.get("gate") or {}).get("vs_live") or {}
            deciding = against_live.get("judged_rank_score")
            if deciding and deciding.get("interval"):
                low, high = deciding["interval"]
                text += (
                    f" (judged rank {deciding['difference']:+.3f} [{low:+.3f}, {high:+.3f}], "
                    f"{deciding['events']} events)"
                )
            out.append(text)
    return out


def plot(runs: list[dict], generators: list[str], image: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(generators), figsize=(4 * len(generators), 3.4))
    axes = np.atleast_1d(axes)
    for axis, name in zip(axes, generators, strict=True):
        for policy, colour in zip(POLICIES, ("tab:green", "tab:gray"), strict=True):
            group = _group(runs, name, policy)
            if not group:
                continue
            xs = [p["screens"] for p in group[0]["curve"]]
            served = np.array([[p["served"] for p in r["curve"]] for r in group])
            axis.plot(xs, np.median(served, axis=0), color=colour, label=f"{policy} served")
            axis.fill_between(xs, served.min(axis=0), served.max(axis=0), color=colour, alpha=0.15)
            learned = np.array(
                [
                    [np.nan if p["learned"] is None else p["learned"] for p in r["curve"]]
                    for r in group
                ]
            )
            medians = [np.nan if np.isnan(c).all() else float(np.nanmedian(c)) for c in learned.T]
            axis.plot(
                xs,
                medians,
                color=colour,
                linestyle=":",
                label=f"{policy} learned",
            )
        axis.set_title(f"{name} ({len(_group(runs, name, POLICIES[0]))} seeds)", fontsize=9)
        axis.set_xlabel("screens")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("recall@10 of same-trick clips")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(image, dpi=90)
    plt.close(figure)
