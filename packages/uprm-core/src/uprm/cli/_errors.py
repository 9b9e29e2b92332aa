"""How the ``uprm`` command reports errors (not a command: the name starts with ``_``).

An *expected* error — one of UPRM's own (:class:`uprm.errors.UPRMError`), a file of the
user's that cannot be opened (an :class:`OSError` naming a file), or a
:class:`click.ClickException` a command raised for one of those — is one line on stderr,
``Error: <message>``, and exit status 1. With ``uprm --debug COMMAND`` (or
``UPRM_DEBUG=1``) the traceback of the error (for a ``ClickException``, of the exception
it was raised from) is printed first. Anything else is a bug and keeps its traceback.

Commands may keep ``raise click.ClickException(str(exc)) from exc``: the ``from exc`` is
what ``--debug`` shows. :func:`user_error` is the same in one call.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from uprm.errors import UPRMError

__all__ = ["DEBUG_ENV", "debug_enabled", "expected", "report", "user_error"]

#: the environment variable of ``--debug``
DEBUG_ENV = "UPRM_DEBUG"
#: OSErrors about a user's file or folder (a broken pipe is click's business)
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """Whether ``--debug`` was given to the ``uprm`` group (or ``UPRM_DEBUG`` is set)."""
    ctx = ctx if ctx is not None else click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("debug"):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def expected(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of the user's input rather than a bug."""
    if isinstance(exc, UPRMError):
        return True
    return isinstance(exc, OSError) and (isinstance(exc, _FILE_ERRORS) or exc.filename is not None)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, UPRMError) and exc.filename is not None and exc.strerror:
        names = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        return f"{names}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def user_error(exc: BaseException) -> click.ClickException:
    """``raise user_error(exc) from exc``: the one-line error of ``exc`` (its traceback
    shown under ``--debug``)."""
    return click.ClickException(_message(exc))


def report(exc: BaseException, ctx: click.Context | None = None) -> click.ClickException | None:
    """What the group does with an exception escaping a command: under ``--debug``, print
    the traceback of an expected error (a ``ClickException``'s cause included); return
    the ``ClickException`` to raise instead (``None``: let ``exc`` propagate as it is)."""
    debug = debug_enabled(ctx)
    if isinstance(exc, click.ClickException):
        cause = exc.__cause__ or exc.__context__
        if debug and cause is not None:
            traceback.print_exception(cause, file=sys.stderr)
        return None
    if not expected(exc):
        return None
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    return user_error(exc)
