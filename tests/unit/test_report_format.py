"""heaters-db report's "from" column: where each head's training started."""

from heaters_db.learning.report import training_start

VERSIONS = {11: 1, 12: 2}


def test_the_start_of_fresh_warm_and_held_heads():
    assert training_start({"training": {"start": "pca"}}, VERSIONS) == "pca"
    warm = {"training": {"start": "warm", "warm_start_head_id": 12}}
    assert training_start({**warm, "config": {"start_decay": 0.0}}, VERSIONS) == "v2"
    assert training_start({**warm, "config": {"start_decay": 10.0}}, VERSIONS) == "v2 held"
    # Heads stored before the start pull existed have no start_decay: a plain warm start.
    assert training_start(warm, VERSIONS) == "v2"
    # The head it continued is gone from the list, or the head came from another tool.
    gone = {"training": {"start": "warm", "warm_start_head_id": 99}}
    assert training_start(gone, VERSIONS) == "warm"
    assert training_start({}, VERSIONS) == "-"
