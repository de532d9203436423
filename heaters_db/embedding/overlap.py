"""The one "decode the next batch while the model runs" loop of the embed path.

`overlapped` is used by `embedder.embed_clips` (and through it heaters' `run_video_embed`) and by
`heaters_db.embed_jobs.EmbedPipeline.stream`, which the daemon's embed kind and
`heaters-db embed --clip` drive. `start` must return at once with the slow part (decoding, in a
thread pool: decord and torch release the GIL) running in the background; `run` is the model
call on the caller's thread. The next batch is taken from `batches` only after the current one
decoded: for the daemon that is a claim, so no job sits leased longer than one batch ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import TypeVar

B = TypeVar("B")  # a batch as the source yields it
P = TypeVar("P")  # the batch started (decoding in the background)
R = TypeVar("R")  # what `run` makes of it

_END = object()


def overlapped(
    batches: Iterable[B],
    start: Callable[[B], P],
    wait: Callable[[P], None],
    run: Callable[[P], R],
    stopped: Callable[[], bool] | None = None,
) -> Generator[R, None, None]:
    """Yield `run(start(batch))` for each batch, batch i+1 started before batch i runs.

    `stopped()` is asked after each batch decoded: when true the loop ends without running it
    (a daemon's stop: what was not run yet is handed back by the caller). Whenever the loop
    ends (exhausted, stopped, an error, the consumer closing it), a batch already started is
    waited for, so no decode outlives it.
    """
    source = iter(batches)
    first = next(source, _END)
    if first is _END:
        return
    current: P = start(first)  # type: ignore[arg-type]
    following: P | None = None
    try:
        while True:
            wait(current)
            if stopped is not None and stopped():
                return
            batch = next(source, _END)
            following = None if batch is _END else start(batch)  # type: ignore[arg-type]
            yield run(current)
            if following is None:
                return
            current, following = following, None
    finally:
        if following is not None:
            wait(following)
