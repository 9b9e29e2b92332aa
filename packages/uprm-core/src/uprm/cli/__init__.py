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

    def invoke(self, ctx: click.Context):
        """Run the command; an expected error escaping it (:mod:`uprm.cli._errors`) becomes
        one line ``Error: ...`` and exit status 1, with its traceback under ``--debug``."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from uprm.cli._errors import report

            replacement = report(exc, ctx)
            if replacement is None:
                raise
            raise replacement from exc


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="uprm")
@click.option("--debug", is_flag=True, envvar="UPRM_DEBUG",
              help="Print the traceback of an error (by default an expected error is one line, "
                   "`Error: ...`, and exit status 1). Also UPRM_DEBUG=1.")
def cli(debug: bool) -> None:
    """UPRM: in-depth security-oriented video understanding with a Video-LLM whose
    visual tokens come from a mixture of physical-world experts (pose, object
    relations, background, coarse video), mixed by a gated trade-off router.

    Models load from local paths everywhere; with a network, a hub id (e.g.
    LanguageBind/Video-LLaVA-7B-hf) is resolved by transformers and an ultralytics
    model name (yolo11n-pose.pt) by ultralytics, as each library does. UPRM_OFFLINE=1
    makes everything local-only (an error naming what is missing instead of a
    download). Run `uprm COMMAND --help` for the options of a command. An error in your input (a
    missing file, a bad checkpoint, an unknown expert) is one line and exit status 1;
    `uprm --debug COMMAND ...` shows its traceback.
    """


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``uprm`` script."""
    from uprm.offline import configure_offline

    configure_offline()
    # No warning filter here: the deprecations third-party libraries raise from their own
    # calls are silenced where UPRM calls them (peft in uprm.modeling.model._with_lora,
    # torch_geometric's import in uprm_expert_relation.adapter), for library users too;
    # tests/robustness/test_console.py fails on any warning a main command prints.
    try:
        cli.main(args=argv, prog_name="uprm", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
