"""Tests of ``uprm serve`` (a package, so its servers and browser stop when its tests end)."""
