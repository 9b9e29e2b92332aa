"""The ``uprm`` command line.

Each sub-command lives in its own module of this package (``uprm/cli/<name>.py``,
module-level ``cli`` object, a :mod:`click` command or group). Modules are found by
listing this package and imported only when their command runs or help is shown, so
``uprm --help`` stays fast and no command drags in another's heavy imports.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from uprm._version import __version__

__all__ = ["cli", "main"]


def _command_modules() -> dict[str, str]:
    names = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        names[info.name.replace("_", "-")] = f"{__name__}.{info.name}"
    return dict(sorted(names.items()))


class LazyGroup(click.Group):
    """A group whose commands are the modules of :mod:`uprm.cli`, imported on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_command_modules()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        module = _command_modules().get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(module).cli


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="uprm")
def cli() -> None:
    """UPRM: in-depth security-oriented video understanding with a Video-LLM whose
    visual tokens come from a mixture of physical-world experts (pose, object
    relations, background, coarse video), mixed by a gated trade-off router.

    Nothing is downloaded: every model is loaded from a local path. Run
    `uprm COMMAND --help` for the options of a command.
    """


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``uprm`` script."""
    import warnings

    from uprm.offline import configure_offline

    configure_offline()
    # deprecations inside third-party libraries, not actionable by a user of the CLI
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    try:
        cli.main(args=argv, prog_name="uprm", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
