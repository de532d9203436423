"""The demo's synthetic clips decode to the same frames every time they are written.

`make demo` is quoted in the README; its sorting amplifies a thousandth of a cosine, so a run
only repeats if the pixels the model sees do. libx264's lossy rate control was measured not to
be bit-repeatable here (about one encode in three differed), hence lossless clips.
"""

from __future__ import annotations

import decord
import numpy as np

from heaters_db.demo.synthetic_clips import _frames, write_clip, write_sample_clips


def decoded(path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def test_a_clip_written_again_decodes_to_the_same_frames(tmp_path):
    frames = list(_frames("spin", 2, seed=7, size=96, num_frames=30))
    first = None
    for attempt in range(6):
        path = tmp_path / f"take{attempt}.mp4"
        write_clip(path, iter(frames), size=96, fps=15)
        pixels = decoded(path)
        assert pixels.shape == (30, 96, 96, 3)
        if first is None:
            first = pixels
        np.testing.assert_array_equal(pixels, first, err_msg=f"write {attempt} decoded differently")
    # Lossless up to the RGB -> YUV 4:2:0 conversion, which averages the per-pixel sensor noise
    # (+-6) of the colour planes over 2x2 blocks: about 3.2 levels here; crf 20 was 5.5 to 12.
    assert np.abs(first.astype(int) - np.stack(frames)).mean() < 4


def test_sample_clips_are_one_file_per_trick_and_spot(tmp_path):
    clips = write_sample_clips(tmp_path, tricks=2, spots=3)
    assert sorted(c.identifier for c in clips) == sorted(
        f"{t}_spot{s}_take0" for t in {c.trick for c in clips} for s in range(3)
    )
    assert len({c.trick for c in clips}) == 2 and all(c.path.is_file() for c in clips)
