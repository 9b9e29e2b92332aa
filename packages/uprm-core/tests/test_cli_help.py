"""The `uprm` help says the truth about the network (docs/design.md §6): local paths
everywhere, a hub id resolved (and downloaded when online) by transformers, and
UPRM_OFFLINE=1 for local-only — never that nothing is downloaded."""

from __future__ import annotations

import re

import click
from click.testing import CliRunner

from uprm.cli import cli


def _help(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # click wraps lines: compare the words


def test_uprm_help_describes_online_hub_ids_and_uprm_offline():
    text = _help()
    assert not re.search(r"nothing is downloaded|never download", text, re.I)
    assert "UPRM_OFFLINE=1" in text and "local-only" in text
    assert "resolved by transformers" in text


def test_train_backbone_help_says_a_hub_id_is_downloaded_when_online_unless_uprm_offline():
    text = _help("train")
    assert not re.search(r"nothing is downloaded|never download", text, re.I)
    train = cli.get_command(click.Context(cli), "train")
    backbone = next(p for p in train.params if p.name == "backbone")
    words = " ".join(backbone.help.split())
    assert "downloaded when online" in words and "UPRM_OFFLINE=1" in words
    assert words in text  # the option's help is what `uprm train --help` prints
