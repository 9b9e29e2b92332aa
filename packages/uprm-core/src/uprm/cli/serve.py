"""``uprm serve``: the detection service (REST API + web page)."""

from __future__ import annotations

import click

from uprm.cli._options import detect_options


def worker_options():
    """``--workers`` and ``--store``, shared by ``uprm serve`` and ``uprm serve-worker``."""

    def apply(func):
        func = click.option("--store", envvar="UPRM_STORE", show_envvar=True, default=None, metavar="URL",
                            help="Keep the jobs, reviews and results index in PostgreSQL "
                                 "(postgresql://user@host:port/database; the password is better in PGPASSWORD or "
                                 "~/.pgpass) so workers on other hosts share them (default: SQLite in --data-dir).",
                            )(func)
        return click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                            help="Worker processes on this host, each with its own model (on GPUs one per device; "
                                 "on CPUs the threads split between them).")(func)

    return apply


@click.command("serve")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="A trained UPRM checkpoint directory (`uprm train --out DIR`).")
@click.option("--data-dir", default="uprm-serve", show_default=True, type=click.Path(file_okay=False),
              help="The jobs database (SQLite), uploads and results; jobs survive restarts.")
@click.option("--media-root", type=click.Path(exists=True, file_okay=False), default=None,
              help='Folder whose videos POST /v1/jobs {"path": ...} may read (default: path jobs refused).')
@click.option("--models-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help='Folder of checkpoints POST /v1/model {"checkpoint": ...} may switch to between jobs '
                   "(default: switching refused; a restart with another --checkpoint still switches).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: a free one; the URL is printed).")
@click.option("--token", envvar="UPRM_TOKEN", default=None, show_envvar=True,
              help="Bearer token required on every API request (needed beyond loopback, ≥ 16 characters).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=2048, show_default=True,
              help="Largest upload; a larger one is refused with 413.")
@click.option("--max-queue", type=click.IntRange(min=1), default=100, show_default=True,
              help="Jobs waiting to run; one more is refused with 429.")
@click.option("--max-attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="A job whose worker died this many times while running it fails.")
@worker_options()
@detect_options()
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
def cli(checkpoint: str, data_dir: str, media_root: str | None, models_dir: str | None, host: str, port: int,
        token: str | None, max_upload_mb: float, max_queue: int, max_attempts: int, workers: int,
        store: str | None, detect: dict, log_level: str) -> None:
    """Serve threat detection over HTTP: a REST API (OpenAPI docs at /docs) and a web page.

    POST /v1/jobs takes a video (multipart field `video`) or {"path": ...} under
    --media-root and returns a job id; GET /v1/jobs/ID gives its state and progress,
    /v1/jobs/ID/result the `uprm detect` JSON, /v1/jobs/ID/timeline.png the timeline.
    Jobs wait in SQLite in --data-dir (or in PostgreSQL with --store) and run in order of
    acceptance in --workers worker processes that hold the model (uprm serve-worker adds
    workers on other hosts); a restart (even after a crash) loses no accepted job, and a
    job whose worker was killed runs again on another.
    POST /v1/model switches to another checkpoint under --models-dir between jobs. Listens
    on 127.0.0.1 unless --host says otherwise, which needs --token. Guide: docs/serve.md.
    """
    from uprm.extras import require

    require("serve")  # fastapi, uvicorn, python-multipart: before the checkpoint loads
    try:
        from uprm.serve.config import ServeConfig, ServeConfigError
        from uprm.serve.server import run
    except ImportError as exc:
        raise click.ClickException(f"uprm serve needs the serve extra: pip install \"uprm-core[serve]\" ({exc})") \
            from exc
    from uprm.errors import ConfigError

    try:
        config = ServeConfig(checkpoint=checkpoint, data_dir=data_dir, media_root=media_root, models_dir=models_dir,
                             host=host, port=port,
                             token=token, max_upload_bytes=int(max_upload_mb * (1 << 20)), max_queue=max_queue,
                             max_attempts=max_attempts, workers=workers, store=store, **detect)
        run(config, log_level, announce=lambda url: click.echo(f"uprm serve: {url} (page /, API /v1, docs /docs); "
                                                               f"data in {config.data_dir}", err=False))
    except (ServeConfigError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
