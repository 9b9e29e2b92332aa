import importlib.util
from pathlib import Path

import pytest

REFERENCE = Path(__file__).with_name("anet_reference.py")


def load_reference():
    """tests/metrics/anet_reference.py as a module (the tests run with
    --import-mode=importlib, so it is loaded by path; benchmarks/metrics.py does the same)."""
    spec = importlib.util.spec_from_file_location("uprm_tests_anet_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def anet():
    return load_reference()
