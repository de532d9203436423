"""`heaters-db demo`: the end-to-end demo (the README's main command runs it)."""

from __future__ import annotations

import click

from heaters_db.settings import get_settings


@click.command()
@click.option(
    "--rounds", default=4, show_default=True, help="Sorting rounds (each one triggers a training)."
)
@click.option(
    "--screens", default=40, show_default=True, help="Simulated sorting screens per round."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the simulated sorter.")
def demo(rounds: int, screens: int, seed: int) -> None:
    """Run the whole pipeline on synthetic sample clips, non-interactively (a few minutes on a CPU).

    Uses the embedded PostgreSQL under HEATERS_HOME (database heaters_demo, recreated each run),
    a small random-weight V-JEPA 2 unless HEATERS_MODEL names real weights, a real
    `heaters-db daemon` for embedding and training, and a SIMULATED sorter that answers from the
    clips' planted tricks. Prints similar_clips(x, 'trick') and recall@10 before and after.
    """
    from heaters_db.demo.run import DemoConfig, run_demo

    run_demo(get_settings(), DemoConfig(rounds=rounds, screens_per_round=screens, seed=seed))


COMMANDS = (demo,)
