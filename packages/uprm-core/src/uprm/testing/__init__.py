"""Testing support for UPRM and its plugins: the standard expert tests every expert
runs (:class:`ExpertTests`), a tiny :class:`~uprm.ExpertContext`, synthetic clips, and
an isolated plugin host for throw-away plugins."""

from uprm.testing.experts import ColourExpert
from uprm.testing.fixtures import isolated_plugins, random_video_tokens, synthetic_clip, tiny_context
from uprm.testing.standard import ExpertTests

__all__ = ["ColourExpert", "ExpertTests", "isolated_plugins", "random_video_tokens", "synthetic_clip", "tiny_context"]
