"""``uprm data``: build instruction sets from the real datasets' files (and the
synthetic surveillance world)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

SYNTHETIC_HELP = ("Render the synthetic surveillance world (videos, annotations, poses, scene graphs); "
                  "--design keyed: each threat differs from its twin in one expert's input.")


def _splits(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three numbers like 0.8,0.1,0.1, got {value!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise click.BadParameter(f"expected three non-negative numbers (train,val,test), got {value!r}")
    return parts  # type: ignore[return-value]


def _tasks(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in value.split(",") if t.strip())
    bad = [t for t in tasks if t not in ("identify", "locate", "attribute")]
    if bad or not tasks:
        raise click.BadParameter(f"tasks are a comma list of identify, locate, attribute; got {value!r}")
    return tasks


def _out_option(default_name: str) -> Callable:
    return click.option(
        "--out",
        "-o",
        type=click.Path(path_type=Path),
        required=True,
        help=f"A .json file (every record, each with its split) or a folder ({default_name}_<split>.json per "
        "split). Media paths in the records are relative to the JSON's folder.",
    )


def _with_options(func: Callable, options: list[Callable]) -> Callable:
    """``func`` with the click ``options`` applied so that ``--help`` lists them in the given order."""
    for option in reversed(options):
        func = option(func)
    return func


def _stage2_options(func: Callable) -> Callable:
    options = [
        click.option(
            "--videos",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder of the videos (searched recursively by file name, class folders are fine). Videos "
            "not found are skipped (see --missing).",
        ),
        click.option(
            "--tasks",
            default="identify,locate,attribute",
            show_default=True,
            callback=_tasks,
            help="Which questions to ask (attribute only where a cause is known).",
        ),
        click.option("--seed", default=0, show_default=True, help="Seed of the hash split."),
        click.option(
            "--splits",
            default="0.8,0.1,0.1",
            show_default=True,
            callback=_splits,
            help="train,val,test fractions of the deterministic hash split.",
        ),
        click.option(
            "--keep-source-split/--resplit",
            default=True,
            show_default=True,
            help="Keep a split the source names (e.g. UCA's Train/Val/Test files) or re-split every video by hash.",
        ),
        click.option(
            "--window",
            "window_s",
            type=float,
            help="Cut videos into windows of this many seconds (times in answers become window-relative).",
        ),
        click.option("--stride", "stride_s", type=float, help="Seconds between window starts (default: --window)."),
        click.option(
            "--negative-ratio",
            type=float,
            help="Keep at most this many normal videos per threat video (default: all).",
        ),
        click.option("--no-negatives", is_flag=True, help="Leave normal videos out."),
        click.option(
            "--keypoints",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder of per-video keypoint JSON (<video_id>.json, docs/formats.md) to reference.",
        ),
        click.option(
            "--scene-graphs",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder of per-video scene-graph JSON (<video_id>.json) to reference.",
        ),
        click.option(
            "--missing",
            type=click.Choice(["skip", "error", "keep"]),
            default=None,
            help="A video not in --videos: skip it (default with --videos), stop with an error, or keep "
            "the expected path.",
        ),
        click.option(
            "--activitynet",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the ground truth as ActivityNet JSON (for `uprm eval`).",
        ),
    ]
    return _with_options(func, options)


def _handle_errors(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from uprm.errors import UPRMError

        try:
            return func(*args, **kwargs)
        except UPRMError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _build_stage2(annotations: Sequence[Any], out: Path, name: str, opts: dict[str, Any]) -> None:
    from uprm.data.annotations import write_activitynet
    from uprm.data.instructions import build_instructions

    records = build_instructions(
        annotations,
        out,
        name=name,
        videos=opts["videos"],
        tasks=opts["tasks"],
        seed=opts["seed"],
        splits=opts["splits"],
        source_split=opts["keep_source_split"],
        negatives=not opts["no_negatives"],
        negative_ratio=opts["negative_ratio"],
        window_s=opts["window_s"],
        stride_s=opts["stride_s"],
        keypoints=opts["keypoints"],
        scene_graphs=opts["scene_graphs"],
        missing=opts["missing"],
        show_progress=True,
    )
    if opts.get("activitynet"):
        kept = {r["video_id"] for r in records}
        write_activitynet([a for a in annotations if a.video_id in kept], opts["activitynet"])
    _report(records, annotations=len(annotations), activitynet=opts.get("activitynet"))


def _report(records: Any, annotations: int | None = None, activitynet: Path | None = None) -> None:
    from collections import Counter

    from uprm.data.instructions import count_records

    counts = count_records(records)
    head = f"{len(records)} records"
    if annotations is not None:
        head += f" from {annotations} annotated videos"
    click.echo(head)
    for key in ("task", "split", "category"):
        items = sorted(counts[key].items(), key=lambda kv: (-kv[1], kv[0]) if key == "category" else kv[0])
        click.echo(f"  by {key + ':':<10}" + "  ".join(f"{k} {v}" for k, v in items))
    if records.skipped:
        reasons = Counter(reason for _, reason in records.skipped)
        click.echo(f"  skipped:    {len(records.skipped)} (" + ", ".join(f"{n} {r}" for r, n in reasons.items()) + ")")
    for split, path in sorted(records.files.items()):
        click.echo(f"  wrote {path} ({sum(1 for r in records if split in ('all', r.get('split', 'all')))} records)")
    if activitynet:
        click.echo(f"  wrote {activitynet} (ActivityNet ground truth)")


class _LazyCommand(click.Command):
    """A command defined in another module, imported only when it runs or shows its
    own help (so ``uprm data --help`` stays light)."""

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help, help=short_help)
        self._target = target

    def _load(self) -> click.Command:
        module, _, attr = self._target.partition(":")
        try:
            command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(
                f"`uprm data {self.name}` is not available: {self._target} could not be loaded ({exc})"
            ) from exc
        if not isinstance(command, click.Command):
            raise click.ClickException(f"{self._target} is not a click command")
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any):
        return self._load().make_context(info_name, args, parent=parent, **extra)


@click.group("data")
def cli() -> None:
    """Build DeepSVU instruction sets (Video-LLaVA conversation JSON, docs/formats.md).

    Stage 2 (identify / locate / attribute): `ucf-crime`, `uca`, `cuva`, and a site's own
    labels from `label-studio` or `cvat` exports (checked against its --taxonomy). Stage 1
    pre-tuning (physical-world instructions): `refcoco` (object relations),
    `humanml3d` (human pose), `rsicb` (visual background). `synthetic` renders a
    procedurally generated surveillance world with known threats.

    Every command writes its JSON atomically, splits videos deterministically by a hash
    of their ids (--seed), and prints counts per task, split and category.
    """


cli.add_command(_LazyCommand("synthetic", "uprm.cli._synthetic:synthetic_command", SYNTHETIC_HELP))


@cli.command("ucf-crime")
@click.argument("annotation", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_out_option("ucf_crime")
@click.option(
    "--fps",
    default=30.0,
    show_default=True,
    help="Frame rate turning frame indices into seconds when a video's own is unknown.",
)
@_stage2_options
@_handle_errors
def ucf_crime(annotation: Path, out: Path, fps: float, **opts: Any) -> None:
    """UCF-C instructions from UCF-Crime's temporal annotations.

    ANNOTATION is Temporal_Anomaly_Annotation_for_Testing_Videos.txt (6 columns, or the
    7-column variant with the frame count). With --videos each video's own frame rate
    and duration are used. Normal videos give the "no threat" answers.

    \b
    uprm data ucf-crime Temporal_Anomaly_Annotation_for_Testing_Videos.txt \\
        --videos UCF_Crimes/Videos --out data/ucf_crime --tasks identify,locate
    """
    from uprm.data.annotations import read_ucf_crime

    anns = read_ucf_crime(annotation, fps=fps, videos=opts["videos"])
    if opts["keep_source_split"] and all(a.split == "test" for a in anns):
        opts["keep_source_split"] = False  # the file is the test set only: split it by hash
    _build_stage2(anns, out, "ucf_crime", opts)


@cli.command("uca")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_out_option("uca")
@click.option(
    "--temporal",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="UCF-Crime's temporal annotation file: its threat segments replace UCA's event segments "
    "for the videos it lists.",
)
@click.option(
    "--captions-as-causes",
    is_flag=True,
    help="Use the UCA sentences of a threat video as its causes (enables attribute questions).",
)
@_stage2_options
@_handle_errors
def uca(files: tuple[Path, ...], out: Path, temporal: Path | None, captions_as_causes: bool, **opts: Any) -> None:
    """Instructions from UCA (UCFCrime_Train/Val/Test.json, or the text form).

    UCA captions every event of a video; a threat video's events become its segments
    unless --temporal gives UCF-Crime's own threat segments. The split of each file
    (Train/Val/Test) is kept unless --resplit.
    """
    from uprm.data.annotations import read_uca, read_ucf_crime

    anns = [a for f in files for a in read_uca(f)]
    if temporal is not None:
        truth = {a.video_id: a for a in read_ucf_crime(temporal)}
        for a in anns:
            if a.video_id in truth:
                a.segments = list(truth[a.video_id].segments)
    if captions_as_causes:
        for a in anns:
            if a.is_threat and not a.causes:
                a.causes = list(a.descriptions)
    _build_stage2(anns, out, "uca", opts)


@cli.command("cuva")
@click.argument("annotation", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_out_option("cuva")
@click.option(
    "--categories",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CUVA's Category.txt (default: the 11 classes built in).",
)
@click.option("--sheet", help="Worksheet name of the xlsx (default: the first).")
@_stage2_options
@_handle_errors
def cuva(annotation: Path, out: Path, categories: Path | None, sheet: str | None, **opts: Any) -> None:
    """CUVA instructions from the annotation sheet (.xlsx) or the instruction rows
    (.json / .jsonl / .csv).

    Moments (X3, MMSS pairs like [0052,0114]) give the segments; the reason (X2) is the
    cause the attribute answers give.
    """
    from uprm.extras import require

    if annotation.suffix.lower() in (".xlsx", ".xlsm"):
        require("data", "openpyxl")
    from uprm.data.annotations import read_cuva

    anns = read_cuva(annotation, categories=categories, sheet=sheet)
    _build_stage2(anns, out, "cuva", opts)


def _label_options(func: Callable) -> Callable:
    """The options of the label imports (``label-studio``, ``cvat``)."""
    options = [
        click.option(
            "--taxonomy",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="The site's categories (YAML, docs/formats.md); a label not in it stops the import, naming it. "
            "Default: UCF-Crime's 13 categories and Normal.",
        ),
        click.option(
            "--out",
            "-o",
            type=click.Path(file_okay=False, path_type=Path),
            required=True,
            help="Folder to write: activitynet.json (the ground truth; --activitynet writes it elsewhere) and "
            "<name>_<split>.json (the instructions).",
        ),
        click.option(
            "--fps",
            type=click.FloatRange(min=0, min_open=True),
            help="Frame rate the tool counted frames at, for every video. Default: each video's own, read from its "
            "file in --videos; without either the import stops.",
        ),
    ]
    return _with_options(func, options)


def _build_labels(annotations: Sequence[Any], out: Path, name: str, opts: dict[str, Any]) -> None:
    """The label imports write the ground truth always (beside the instructions by default)."""
    opts["activitynet"] = opts.get("activitynet") or out / "activitynet.json"
    _build_stage2(annotations, out, name, opts)


@cli.command("label-studio")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_label_options
@_stage2_options
@_handle_errors
def label_studio(export: Path, taxonomy: Path | None, out: Path, fps: float | None, **opts: Any) -> None:
    """Instructions and ActivityNet ground truth from a Label Studio JSON export of a video
    project labelled with <TimelineLabels> (or <VideoRectangle> with <Labels>).

    Ranges are frames counted from 1 at the <Video frameRate> of the labelling
    configuration: --fps is that rate (or --videos reads each video's own). A <TextArea>
    of a region is its cause. A task whose annotation has no threat label is Normal for
    the whole video; a task nobody annotated is left out. Upload prefixes
    (1a2b3c4d-clip.mp4) are removed from the video ids.

    \b
    uprm data label-studio project-3-at-2025-01-05.json --taxonomy site.yaml \\
        --videos footage/ --out data/site
    """
    import warnings

    from uprm.data.labelstudio import read_label_studio

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        anns = read_label_studio(export, taxonomy, fps=fps, videos=opts["videos"])
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    _build_labels(anns, out, "label_studio", opts)


@cli.command("cvat")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_label_options
@_stage2_options
@_handle_errors
def cvat(export: Path, taxonomy: Path | None, out: Path, fps: float | None, **opts: Any) -> None:
    """Instructions and ActivityNet ground truth from a CVAT for video 1.1 export
    (annotations.xml, or the ZIP CVAT downloads; a task or a project).

    A track's label holds from a shape that is not outside to the frame before the next
    outside one (to the task's end after its last shape); tagged frames in a row make one
    segment. Frames are the video's own (counted from 0): --videos reads each video's
    frame rate, or --fps gives it. A task without labels is Normal for the whole video.

    \b
    uprm data cvat annotations.xml --taxonomy site.yaml --videos footage/ --out data/site
    """
    from uprm.data.cvat import read_cvat

    anns = read_cvat(export, taxonomy, fps=fps, videos=opts["videos"])
    _build_labels(anns, out, "cvat", opts)


@cli.command("refcoco")
@click.argument("refs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="COCO image folder (train2014).",
)
@click.option(
    "--instances",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="RefCOCO's instances.json (boxes and image sizes).",
)
@_out_option("refcoco")
@click.option("--seed", default=0, show_default=True, help="Seed of the template choice and of --limit.")
@click.option("--limit", type=int, help="Keep at most this many samples (a hash-chosen subset).")
@click.option("--one-sentence-per-ref", is_flag=True, help="One expression per region instead of all.")
@click.option("--missing", type=click.Choice(["skip", "error", "keep"]), default="skip", show_default=True)
@_handle_errors
def refcoco(refs: Path, images: Path, instances: Path | None, out: Path, seed: int, limit: int | None,
            one_sentence_per_ref: bool, missing: str) -> None:  # fmt: skip
    """Stage-1 object-relation instructions from RefCOCO (region → referring expression).

    REFS is refs(unc).p — read with a restricted unpickler that builds only plain
    containers and refuses any other global — or a JSON conversion of it.
    """
    from uprm.data.pretune import build_refcoco

    records = build_refcoco(
        refs, images, out, instances=instances, seed=seed, limit=limit,
        one_sentence_per_ref=one_sentence_per_ref, missing=missing,
    )  # fmt: skip
    _report(records)


@cli.command("humanml3d")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--videos",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Folder of the motions rendered as videos (<motion_id>.mp4).",
)
@_out_option("humanml3d")
@click.option("--seed", default=0, show_default=True)
@click.option("--limit", type=int, help="Keep at most this many captions (a hash-chosen subset).")
@click.option("--no-mirrored", is_flag=True, help="Leave out the mirrored motions (M… ids).")
@click.option("--missing", type=click.Choice(["skip", "error", "keep"]), default="skip", show_default=True)
@_handle_errors
def humanml3d(root: Path, videos: Path, out: Path, seed: int, limit: int | None, no_mirrored: bool,
              missing: str) -> None:  # fmt: skip
    """Stage-1 human-pose instructions from HumanML3D (motion video → caption).

    ROOT holds texts/<id>.txt (caption#tokens#start#end) and train/val/test.txt.
    """
    from uprm.data.pretune import build_humanml3d

    records = build_humanml3d(root, videos, out, seed=seed, limit=limit, mirrored=not no_mirrored, missing=missing)
    _report(records)


@cli.command("rsicb")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_out_option("rsicb")
@click.option("--seed", default=0, show_default=True)
@click.option("--splits", default="0.8,0.1,0.1", show_default=True, callback=_splits, help="train,val,test fractions.")
@click.option("--max-per-class", type=int, help="Keep at most this many images per class (balances classes).")
@_handle_errors
def rsicb(root: Path, out: Path, seed: int, splits: tuple[float, float, float], max_per_class: int | None) -> None:
    """Stage-1 visual-background instructions from RSI-CB (scene image → class).

    ROOT holds class folders (RSI-CB128: ROOT/<class>/) or super-category folders of
    class folders (RSI-CB256: ROOT/<category>/<class>/).
    """
    from uprm.data.pretune import build_rsicb

    records = build_rsicb(root, out, seed=seed, splits=splits, max_per_class=max_per_class)
    _report(records)
