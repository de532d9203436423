"""Video embedding: frames from a clip file -> frozen V-JEPA 2 -> one vector per clip.

No database here. The modules, in the order data flows through them:

- `sampling`: pick frames for a strategy and decode them small (decord; PyAV to probe).
- `preprocess`: crop and normalise exactly like transformers' V-JEPA 2 video processor.
- `model`: load the encoder once per process; mean-pool its tokens.
- `embedder`: batch clips with decode/inference overlap; heaters' task result shape.

The optional `video` extra (decord, av, transformers) is imported only when used, so this
package imports with torch and numpy alone.
"""

from heaters_db.embedding.embedder import ClipVideo, EmbedResult, embed_clips, run_video_embed
from heaters_db.embedding.model import Encoder, ModelLoadError, load_encoder
from heaters_db.embedding.preprocess import VideoPreprocessing
from heaters_db.embedding.sampling import (
    CENTERED,
    FULL_CLIP,
    STRATEGIES,
    TRICK_WINDOW,
    NoTrickMetadata,
    UnknownStrategy,
    VideoDecodeError,
    VideoInfo,
    decode_frames,
    probe_video,
)

__all__ = [
    "CENTERED",
    "FULL_CLIP",
    "STRATEGIES",
    "TRICK_WINDOW",
    "ClipVideo",
    "EmbedResult",
    "Encoder",
    "ModelLoadError",
    "NoTrickMetadata",
    "UnknownStrategy",
    "VideoDecodeError",
    "VideoInfo",
    "VideoPreprocessing",
    "decode_frames",
    "embed_clips",
    "load_encoder",
    "probe_video",
    "run_video_embed",
]
