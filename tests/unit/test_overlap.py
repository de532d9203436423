"""heaters_db.embedding.overlap: the next batch starts before the current one runs, and nothing
started is left running when the loop ends."""

from __future__ import annotations

import pytest

from heaters_db.embedding.overlap import overlapped


def recorder() -> tuple[list[str], dict]:
    events: list[str] = []
    steps = {
        "start": lambda batch: events.append(f"start {batch}") or batch,
        "wait": lambda batch: events.append(f"wait {batch}"),
        "run": lambda batch: events.append(f"run {batch}") or batch * 10,
    }
    return events, steps


def test_batch_i_plus_1_starts_after_batch_i_decoded_and_before_it_runs() -> None:
    events, steps = recorder()
    assert list(overlapped([1, 2, 3], **steps)) == [10, 20, 30]
    assert events == [
        "start 1",
        "wait 1",
        "start 2",
        "run 1",
        "wait 2",
        "start 3",
        "run 2",
        "wait 3",
        "run 3",
    ]


def test_nothing_to_do() -> None:
    events, steps = recorder()
    assert list(overlapped([], **steps)) == [] and events == []


def test_the_source_is_read_one_batch_ahead_only() -> None:
    taken: list[int] = []

    def source():
        for batch in range(1, 10):
            taken.append(batch)
            yield batch

    _, steps = recorder()
    loop = overlapped(source(), **steps)
    assert next(loop) == 10
    assert taken == [1, 2]  # a daemon's claim: at most one batch leased ahead


def test_stopped_ends_before_running_a_decoded_batch() -> None:
    events, steps = recorder()
    stop = {"now": False}
    loop = overlapped([1, 2, 3], stopped=lambda: stop["now"], **steps)
    assert next(loop) == 10
    stop["now"] = True
    assert list(loop) == []
    assert "run 2" not in events and "start 3" not in events
    assert events[-1] == "wait 2"  # batch 2 decoded, not run: its caller hands it back


def test_a_consumer_that_leaves_waits_for_the_started_batch() -> None:
    events, steps = recorder()
    loop = overlapped([1, 2, 3], **steps)
    assert next(loop) == 10
    loop.close()
    assert events[-2:] == ["run 1", "wait 2"]


def test_an_error_in_run_still_waits_for_the_started_batch() -> None:
    events, steps = recorder()

    def run(batch: int) -> int:
        raise RuntimeError(f"model failed on {batch}")

    with pytest.raises(RuntimeError, match="model failed on 1"):
        list(overlapped([1, 2], steps["start"], steps["wait"], run))
    assert events == ["start 1", "wait 1", "start 2", "wait 2"]
