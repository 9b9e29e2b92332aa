"""Shared fixtures of the repository-level tests: a script of benchmarks/ loaded as a module
(the benchmarks are scripts, not a package)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def loaded(script: str) -> Iterator[ModuleType]:
    """``benchmarks/<script>.py`` as the module ``<script>_benchmark`` while the block runs."""
    spec = importlib.util.spec_from_file_location(f"{script}_benchmark", BENCHMARKS / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("scale")``: a context manager giving ``benchmarks/scale.py`` as a module."""
    return loaded
