"""Build DeepSVU instructions from UCF-Crime or CUVA annotation files, cache the
experts' features, and train a UPRM model on them.

    # UCF-Crime: the temporal annotation file and the videos (causes from UCA/Hawkeye, optional)
    python examples/train_from_annotations.py --ucf-crime Temporal_Anomaly_Annotation_for_Testing_Videos.txt \
        --videos UCF_Crimes/Videos --causes causes.json --out runs/ucf
    # CUVA: the annotation sheet (or its Hugging Face instruction rows) and the videos
    python examples/train_from_annotations.py --cuva CUVA.xlsx --videos cuva/videos --out runs/cuva

By default it trains the tiny random model (a CPU, minutes: a check of the whole path);
`--backbone /models/Video-LLaVA-7B-hf` trains the real one with the paper's LoRA. The
experts are `--experts` (default: coarse only, which needs nothing but the videos); the
pose and relation experts also need keypoint and scene-graph files (`--keypoints DIR
--scene-graphs DIR`, docs/formats.md) or their own models (`--expert-option
pose.weights=yolo11n-pose.pt`). Writes OUT/instructions/<name>_{train,val,test}.json,
OUT/cache/ and the trained model in OUT/run/ (`uprm detect --checkpoint OUT/run`,
`uprm eval --checkpoint OUT/run --data OUT/instructions/<name>_test.json`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uprm
from uprm.data import (
    FeatureCache,
    build_instructions,
    clip_keys_from_records,
    extract_features,
    read_cuva,
    read_ucf_crime,
)


def read_annotations(args: argparse.Namespace) -> tuple[str, list]:
    """The annotated videos of the dataset given, with causes attached from --causes."""
    if args.ucf_crime:
        name, annotations = "ucf_crime", read_ucf_crime(args.ucf_crime, fps=args.fps, videos=args.videos)
    else:
        name, annotations = "cuva", read_cuva(args.cuva)
    if args.causes:  # UCF-Crime has none; UCA / Hawkeye-style {video_id: [cause, ...]}
        causes = json.loads(Path(args.causes).read_text(encoding="utf-8"))
        for ann in annotations:
            ann.causes = ann.causes or list(causes.get(ann.video_id, []))
    return name, annotations


def model_config(args: argparse.Namespace) -> uprm.UPRMConfig:
    """The model whose experts fill the cache: the one `uprm.train` builds."""
    experts = args.experts.split(",")
    if args.backbone:
        return uprm.UPRMConfig(backbone=args.backbone, experts=experts, num_frames=args.num_frames)
    return uprm.UPRMConfig.tiny(experts=experts, num_frames=args.num_frames, seed=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ucf-crime", help="UCF-Crime's temporal annotation file")
    source.add_argument("--cuva", help="CUVA's annotation sheet (.xlsx) or instruction rows (.json/.jsonl/.csv)")
    parser.add_argument("--videos", required=True, help="folder of the videos (searched recursively)")
    parser.add_argument("--fps", type=float, default=30.0, help="UCF-Crime frame rate (when a file cannot be read)")
    parser.add_argument("--causes", help="JSON {video_id: [cause, ...]} for the attribute questions")
    parser.add_argument("--keypoints", help="folder of <video_id>.json keypoint files (pose expert)")
    parser.add_argument("--scene-graphs", help="folder of <video_id>.json scene graphs (relation expert)")
    parser.add_argument("--experts", default="coarse", help="comma list of installed experts")
    parser.add_argument("--backbone", help="a local Video-LLaVA directory (default: the tiny random model)")
    parser.add_argument("--window", type=float, default=None, help="cut videos into windows of this many seconds")
    parser.add_argument("--stride", type=float, default=None, help="seconds between window starts")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = Path(args.out)

    # 1. instructions: identify / locate / attribute, split by a hash of the video id
    #    (UCF-Crime's temporal annotations all belong to its test set, so its split is not used)
    name, annotations = read_annotations(args)
    records = build_instructions(annotations, out / "instructions", name=name, videos=args.videos,
                                 keypoints=args.keypoints, scene_graphs=args.scene_graphs, source_split=False,
                                 window_s=args.window, stride_s=args.stride)
    print(f"{len(records)} conversations {dict(records.counts()['split/task'])}; skipped {len(records.skipped)}")
    files = records.files

    # 2. every expert's frozen perception, once per clip, into a resumable cache
    model = uprm.build_model(model_config(args))
    keys = clip_keys_from_records(files.values(), args.num_frames)
    report = extract_features(keys, dict(model.block.experts), FeatureCache(out / "cache"), progress=False)
    print(f"features of {report.clips} clips: {report.written} written, {report.cached} cached")
    del model

    # 3. train on the train split (loss on the val split, when it has records)
    run = uprm.train(data=[str(files["train"])], val=[str(files["val"])] if "val" in files else [],
                     cache=str(out / "cache"), out=str(out / "run"), experts=args.experts.split(","),
                     tiny=not args.backbone, backbone=args.backbone, num_frames=args.num_frames,
                     max_steps=args.steps, progress=False)
    print(f"trained: {run}  (uprm detect VIDEO --checkpoint {run}; uprm eval --checkpoint {run} --data "
          f"{files.get('test', files['train'])})")


if __name__ == "__main__":
    main()
