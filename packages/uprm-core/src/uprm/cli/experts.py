"""``uprm experts``: the installed physical-world experts and the broken plugins."""

from __future__ import annotations

import json

import click


@click.command("experts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def cli(as_json: bool) -> None:
    """List the installed experts: name, granularity, distribution and version.

    Experts come from plugins in the `uprm` entry-point group (the coarse expert is
    built into uprm-core). Plugins that failed to load are listed with their error.
    UPRM_LOAD_PLUGINS=a,b loads only those plugins (empty: none);
    UPRM_DISABLE_PLUGINS=a blocks one.
    """
    from uprm.errors import DuplicateExpertError
    from uprm.plugins.manager import get_plugin_host

    host = get_plugin_host()
    try:
        infos = host.experts()
    except DuplicateExpertError as exc:
        raise click.ClickException(str(exc)) from exc
    broken = host.broken()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "experts": [
                        {
                            "name": i.name,
                            "granularity": i.granularity,
                            "distribution": i.distribution,
                            "version": i.version,
                            "plugin": i.plugin,
                            "class": f"{i.cls.__module__}.{i.cls.__qualname__}",
                        }
                        for i in infos.values()
                    ],
                    "broken": [
                        {"plugin": p.name, "distribution": p.distribution, "version": p.version, "error": p.error}
                        for p in broken
                    ],
                },
                indent=2,
            )
        )
        return
    rows = [("NAME", "GRANULARITY", "DISTRIBUTION", "VERSION", "PLUGIN")]
    rows += [(i.name, i.granularity, i.distribution or "-", i.version or "-", i.plugin) for i in infos.values()]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    if broken:
        click.echo("")
        click.echo("Broken plugins (skipped):")
        for p in broken:
            click.echo(f"  {p.name} ({p.distribution or '?'} {p.version or ''}): {p.error}")
