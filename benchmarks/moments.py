"""Moments: what a window variant costs per clip in the embed path.

For one model, on the same 10 s H.264 lines (640x360, 30 fps, textured like embed_throughput's
clips), seconds per clip (decode + preprocess + model, no database) for:

- full clip alone: the full-clip variant (64 frames spread over the clip);
- full clip + windows, one pass: heaters_db.embedding.windows.decode_clip_requests decodes the
  full clip's frames and every window's once, then one model call for the clip and batched
  calls for its windows (what the embed path does when both variants are enabled);
- full clip + windows, decoding twice: the same, but each variant opens and decodes the file on
  its own (what two separate jobs would do).

Each stage (decode full / one pass / twice, model full clip / windows) is timed on its own and
the three rows are their sums, so each model call runs once per clip (ViT-L on two shared CPU
cores takes minutes per call).

Windows: 1.5 s every 0.5 s (the defaults): 8 frames each for the tiny model, 16 for ViT-L.
Rows and bytes per clip for a 10 s line are computed from the window count and pgvector's
storage (4 bytes per dimension + 8), not measured.

One command measures both models and writes the whole section (the ViT-L part: one 10 s line,
about 15-30 min on two shared CPU cores; run it under `nice -n 10`):

    nice -n 10 .venv/bin/python benchmarks/moments.py            # tiny (4 clips) + ViT-L (1 clip)
    .venv/bin/python benchmarks/moments.py --no-vitl --no-readme  # tiny model only, a quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from embed_throughput import VITL_NAME, save_vitl, textured
from learning_common import machine, write_section

from heaters_db.embedding.model import load_encoder
from heaters_db.embedding.sampling import load_clip_frames
from heaters_db.embedding.windows import (
    DEFAULT_STRIDE_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    StrategyRequest,
    WindowRequest,
    decode_clip_requests,
    embed_windows,
    window_spans,
)
from tests.support import videos
from tests.support.tiny_model import TINY_MODEL_NAME, install_tiny_model

HEADING = "Moments: full clip + windows in one pass"
SECONDS = 10.0
FULL_FRAMES = 64
# ViT-L windows per model call on a CPU: 16 (the GPU default) would hold a 16 x 2048-token batch
# of activations at once; 4 keeps the peak near 2 GiB on a shared 24 GiB machine.
VITL_CPU_WINDOW_BATCH = 4


def write_lines(directory: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = directory / f"line-{index}.mp4"
        if not path.exists():
            videos.write_video(
                path, textured(index), num_frames=int(30 * SECONDS), size=(640, 360), fps=30, crf=23
            )
        paths.append(path)
    return paths


def embed_full(encoder, clip) -> None:
    frames = clip.frames.to(encoder.device_used)
    encoder.embed(encoder.preprocessing(frames)[None])


def timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def stages(encoder, paths: list[Path], window_frames: int, window_batch: int) -> dict[str, float]:
    """Seconds per clip of each stage, each measured on its own (averaged over `paths`)."""
    edge = encoder.preprocessing.shortest_edge
    windows = WindowRequest(window_frames, DEFAULT_WINDOW_SECONDS, DEFAULT_STRIDE_SECONDS)
    full = StrategyRequest("video_full_clip", FULL_FRAMES)
    totals = dict.fromkeys(
        ["decode full", "decode one pass", "decode twice", "model full", "model windows"], 0.0
    )
    for path in paths:
        clip, seconds = timed(load_clip_frames, path, "video_full_clip", FULL_FRAMES, edge)
        totals["decode full"] += seconds
        _, seconds = timed(decode_clip_requests, path, edge, [full, windows])
        totals["decode one pass"] += seconds
        started = time.perf_counter()
        load_clip_frames(path, "video_full_clip", FULL_FRAMES, edge)
        (windowed,) = decode_clip_requests(path, edge, [windows])
        totals["decode twice"] += time.perf_counter() - started
        totals["model full"] += timed(embed_full, encoder, clip)[1]
        print(f"  {path.name}: model full clip done", flush=True)
        totals["model windows"] += timed(embed_windows, encoder, [windowed], window_batch)[1]
        print(f"  {path.name}: model windows done", flush=True)
    return {name: total / len(paths) for name, total in totals.items()}


def per_clip(stage: dict[str, float]) -> dict[str, float]:
    model_both = stage["model full"] + stage["model windows"]
    return {
        "full clip alone": stage["decode full"] + stage["model full"],
        "full + windows, one pass": stage["decode one pass"] + model_both,
        "full + windows, decoding twice": stage["decode twice"] + model_both,
    }


def reading(result: dict[str, float], stage: dict[str, float]) -> str:
    """What one model's row says, from its own figures."""
    one_pass, alone = result["full + windows, one pass"], result["full clip alone"]
    saved = result["full + windows, decoding twice"] - one_pass
    return (
        f"windows make a clip cost {one_pass / alone:.1f}x the full clip alone"
        f" (model {stage['model windows']:.2f} s for the windows vs {stage['model full']:.2f} s"
        f" for the full clip); one decode instead of two saves {saved:.2f} s per clip"
        f" ({100 * saved / (saved + one_pass):.0f}% of the clip's cost when decoding twice)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=4, help="tiny model: clips to time")
    parser.add_argument("--vitl-clips", type=int, default=1, help="ViT-L: clips to time")
    parser.add_argument("--no-vitl", action="store_true", help="tiny model only")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()[1]
    work = Path(tempfile.gettempdir()) / "heaters-bench-moments"
    work.mkdir(exist_ok=True)
    paths = write_lines(work / "clips", max(args.clips, args.vitl_clips, 1))
    models = work / "models"
    install_tiny_model(models)
    # (model, frames per window, clips, windows per model call)
    runs = [(TINY_MODEL_NAME, 8, paths[: args.clips], 16)]
    if not args.no_vitl:
        save_vitl(models)
        runs.append((VITL_NAME, 16, paths[: args.vitl_clips], VITL_CPU_WINDOW_BATCH))
    spans = window_spans(0.0, SECONDS, DEFAULT_WINDOW_SECONDS, DEFAULT_STRIDE_SECONDS)
    rows, readings, walls = [], [], []
    for name, window_frames, clip_paths, window_batch in runs:
        started = time.perf_counter()
        encoder = load_encoder(name, device="cpu", model_dir=models)
        crop = encoder.crop_size  # warm-up: a short input, not a full clip (ViT-L on a CPU)
        encoder.embed(torch.zeros(1, encoder.tubelet_size, 3, crop, crop))
        stage = stages(encoder, clip_paths, window_frames, window_batch)
        result = per_clip(stage)
        walls.append(f"{name} {time.perf_counter() - started:.0f} s")
        print(name, stage, result, flush=True)
        rows.append(
            f"| {name} | {window_frames} | {window_batch} | {len(clip_paths)} | "
            + " | ".join(f"{value:.2f}" for value in result.values())
            + f" | {stage['decode full']:.2f} / {stage['decode one pass']:.2f} / "
            f"{stage['decode twice']:.2f} | {stage['model full']:.2f} / {stage['model windows']:.2f} |"
        )
        readings.append(f"- {name}: {reading(result, stage)}.")
        del encoder
    lines = [
        f"Machine: {machine()}; 5-min load average {load_start:.1f} at the start; run under"
        f" `nice -n 10`, wall time {', '.join(walls)}. 10 s lines, 640x360 H.264 at 30 fps;"
        f" full clip {FULL_FRAMES} frames; windows {DEFAULT_WINDOW_SECONDS} s every"
        f" {DEFAULT_STRIDE_SECONDS} s ({len(spans)} per 10 s line). CPU only; ViT-L has random"
        " weights (the real architecture, so the real cost).",
        "",
        "| model | frames/window | windows/call | clips | full clip alone (s/clip) | full + windows, one pass | full + windows, decoding twice | decode: full / one pass / twice | model: full / windows |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Reading (this run; the machine is shared, so stage times carry its noise):",
        *readings,
        "",
        "Storage per 10 s line (computed: pgvector stores 4 bytes per dimension + 8): "
        + ", ".join(
            f"{dim}-d: {len(spans)} rows, {len(spans) * (4 * dim + 8) / 1024:.1f} KiB of vectors"
            f" (one full-clip row: {(4 * dim + 8) / 1024:.1f} KiB)"
            for dim in (1024, 256)
        )
        + "; the HNSW index adds about as much again.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_readme:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
