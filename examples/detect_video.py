"""Find, locate and explain the threats in one video file with a trained UPRM checkpoint.

    python examples/detect_video.py cctv.mp4 --checkpoint runs/uprm [--sidecar-dir ROOT] [--out detections]

Prints each threat segment (seconds), its score, its cause and the experts the router
leaned on; with --out also writes what `uprm detect` writes (the segments' JSON, the
timeline, an evidence sheet per segment, results.json). The checkpoint's experts run as
configured: pose or relation experts that read keypoint or scene-graph files need
--sidecar-dir (ROOT/keypoints/<video_id>.json, ROOT/scene_graphs/<video_id>.json).
"""

from __future__ import annotations

import argparse

import uprm
from uprm.detection import detect_files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--checkpoint", required=True, help="a trained UPRM checkpoint directory")
    parser.add_argument("--sidecar-dir", default=None, help="ROOT of keypoints/ and scene_graphs/ sidecar files")
    parser.add_argument("--window", type=float, default=8.0, help="window length, seconds")
    parser.add_argument("--stride", type=float, default=4.0, help="seconds between window starts")
    parser.add_argument("--out", default=None, help="also write the JSON, timeline and evidence sheets here")
    args = parser.parse_args(argv)

    model = uprm.UPRMModel.from_pretrained(args.checkpoint).eval()  # load once, reuse for every call
    segments = uprm.detect(args.video, model, window=args.window, stride=args.stride, sidecar_dir=args.sidecar_dir)
    print(f"{len(segments)} threat segment(s) in {args.video}")
    for s in segments:
        leaning = max(s.expert_weights, key=s.expert_weights.get)
        print(f"  {s.start:7.1f} - {s.end:7.1f} s  score {s.score:.2f}  {s.cause}  (router leans on {leaning})")
    if args.out:
        report = detect_files([args.video], model, args.out, window=args.window, stride=args.stride,
                              sidecar_dir=args.sidecar_dir, progress=False, overwrite=True)
        print(f"wrote {args.out}/ (results: {report.results})")


if __name__ == "__main__":
    main()
