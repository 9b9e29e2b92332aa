"""The version of the ``uprm-core`` distribution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("uprm-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
