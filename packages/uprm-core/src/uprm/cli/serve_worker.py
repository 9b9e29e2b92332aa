"""``uprm serve-worker``: workers of ``uprm serve`` on another host (no HTTP server)."""

from __future__ import annotations

import signal
import socket
from typing import Any

import click

from uprm.cli._options import detect_options
from uprm.cli.serve import worker_options


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command("serve-worker")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="The checkpoint the server runs (`uprm train --out DIR`), at a path of this host.")
@click.option("--data-dir", default="uprm-serve", show_default=True, type=click.Path(file_okay=False),
              help="The server's data folder as this host mounts it (uploads are read from DATA/uploads, results "
                   "written to DATA/results): a shared folder.")
@click.option("--media-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="The server's --media-root as this host mounts it (path jobs are read under it).")
@click.option("--models-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The server's --models-dir as this host mounts it (for checkpoints chosen with POST /v1/model).")
@click.option("--max-attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="A job whose worker died this many times while running it fails (as the server's).")
@worker_options()
@detect_options()
def cli(checkpoint: str, data_dir: str, media_root: str | None, models_dir: str | None, max_attempts: int,
        workers: int, store: str | None, detect: dict) -> None:
    """Run workers for a `uprm serve` on this host: they claim the jobs of the shared
    store (--store postgresql://…, the server's), run them and write their results to the
    shared data folder; no HTTP server. A job whose worker dies runs again on another
    (after its lease, 30 s, when the worker was on another host).

    Every worker must see the media: --data-dir, --media-root and --models-dir are the
    server's folders as this host mounts them (NFS, or an object store mounted as a
    folder); a job whose file is not there fails naming the file and this host. Pass the
    same detection options as the server's. Guide: docs/serve.md.
    """
    from uprm.extras import require

    require("serve")  # the workers read media through the service's checks (fastapi's error type)
    from uprm.errors import ConfigError
    from uprm.serve.config import ServeConfig, ServeConfigError
    from uprm.serve.supervisor import WorkerPool

    try:
        config = ServeConfig(checkpoint=checkpoint, data_dir=data_dir, media_root=media_root, models_dir=models_dir,
                             max_attempts=max_attempts, workers=workers, store=store, **detect)
        config.check_paths()
        job_store = config.open_store()
    except (ServeConfigError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    pool = WorkerPool(config, job_store, remote=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    click.echo(f"uprm serve-worker: {workers} worker{'s' * (workers > 1)} on {socket.gethostname()}, jobs from "
               f"{config.store_name}; Ctrl-C stops (running jobs go back to the queue)")
    pool.start()
    try:
        while not pool.join(1.0):
            pass
    except KeyboardInterrupt:
        return
    finally:
        pool.stop()
        job_store.close()
    raise click.ClickException("the workers cannot load the checkpoint (see the log above)")
