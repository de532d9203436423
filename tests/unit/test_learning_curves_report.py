"""The learning-curve benchmark's paired policy comparison: which anchor policy is the best
measured (the issue's fallback when no policy halves the screens), on runs made up here."""

import numpy as np
import pytest

from benchmarks.learning_curves_report import mean_with_interval, policy_comparison, target


def _run(generator: str, seed: int, policy: str, served: list[float]) -> dict:
    curve = [{"screens": 0, "served": 0.2, "learned": None, "status": "base"}]
    curve += [{"screens": 50 * (i + 1), "served": s} for i, s in enumerate(served)]
    return {"generator": generator, "seed": seed, "policy": policy, "base": 0.2, "curve": curve}


def _matrix(edge: float, spread: float = 0.03, pairs: int = 10) -> list[dict]:
    """Pairs of runs whose next_anchors curve is the random one plus `edge`, with noise."""
    rng = np.random.default_rng(7)
    runs = []
    for seed in range(pairs):
        random_curve = list(np.linspace(0.3, 0.8, 6) + rng.normal(0, spread, 6))
        next_curve = list(np.asarray(random_curve) + edge + rng.normal(0, spread, 6))
        runs.append(_run("library", seed, "random", random_curve))
        runs.append(_run("library", seed, "next_anchors", next_curve))
    return runs


@pytest.mark.parametrize(("edge", "best"), [(0.08, "next_anchors"), (-0.08, "random")])
def test_a_policy_clearly_ahead_on_the_same_seeds_is_the_best_measured(edge, best):
    lines, found = policy_comparison(_matrix(edge), [50, 100, 200, 300])
    assert found == best
    assert "10 pairs" in lines[0] and f"Best measured: {best}" in lines[0]


def test_policies_within_noise_of_each_other_are_level():
    lines, found = policy_comparison(_matrix(0.0), [50, 100, 200, 300])
    assert found == "level"
    assert "level" in lines[0]


def test_without_pairs_nothing_is_claimed():
    runs = [r for r in _matrix(0.08) if r["policy"] == "random"]
    assert policy_comparison(runs, [50]) == ([], "not measured")


def test_the_interval_holds_the_mean_and_repeats():
    differences = list(np.random.default_rng(1).normal(0.05, 0.1, 25))
    mean, low, high = mean_with_interval(differences)
    assert low < mean < high
    assert mean == pytest.approx(np.mean(differences))
    assert mean_with_interval(differences) == (mean, low, high)


@pytest.mark.parametrize(("base", "expected"), [(0.2, 0.45), (0.5, 0.75), (0.76, 0.88), (1.0, 1.0)])
def test_the_target_is_a_gain_the_library_can_still_make(base, expected):
    """base + 0.25, or half the way to 1 when that is nearer: never a recall above 1."""
    assert target(base) == pytest.approx(expected)
