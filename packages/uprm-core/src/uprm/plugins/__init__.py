"""Writing a UPRM expert plugin — the plugin author's guide.

An expert plugin is a small distribution with one module of hook implementations and
one entry point. Nothing in the core changes when you add one.

1. Write the expert: a subclass of :class:`uprm.Expert` with a unique lowercase
   ``name`` and ``granularity = "fine"``. ``extract(clip)`` is frozen perception (no
   gradients, deterministic, cacheable) returning a dict of tensors; ``forward(features,
   video_tokens)`` is the trainable adapter returning ``[B, T, D]`` on the coarse grid
   (see :mod:`uprm.experts.grid` for pooling and cross-attention helpers)::

       import uprm

       class MotionExpert(uprm.Expert):
           name = "motion"
           granularity = "fine"

           def __init__(self, ctx, hidden=64):
               super().__init__(ctx)  # options are recorded in self.options
               ...

2. Register it with a hook implementation (``plugin.py``)::

       import uprm
       from my_package.expert import MotionExpert

       @uprm.hookimpl
       def uprm_register_experts():
           return [MotionExpert]

3. Declare the entry point in ``pyproject.toml`` (the entry point's name is the
   plugin's name, used by ``UPRM_LOAD_PLUGINS`` / ``UPRM_DISABLE_PLUGINS``)::

       [project.entry-points.uprm]
       motion = "my_package.plugin"

       [project]
       dependencies = ["uprm-core>=0.1,<0.2"]

4. Test it with the standard expert tests::

       from uprm.testing import ExpertTests

       class TestMotion(ExpertTests):
           expert_class = MotionExpert

5. ``pip install .`` and ``uprm experts`` lists it; ``--experts coarse,motion`` uses it.

A plugin that fails to import, misspells a ``uprm_`` hook, or returns something that is
not an expert class is skipped with a warning and listed as broken by ``uprm
experts``; the other plugins still load. ``UPRM_LOAD_PLUGINS=pose,relation`` loads only
those external plugins (empty: none), ``UPRM_DISABLE_PLUGINS=background`` blocks one.
"""

from uprm.plugins.factory import build_experts, expert_seed, parse_expert_options, resolve_expert_names
from uprm.plugins.hookspecs import hookimpl, hookspec
from uprm.plugins.manager import (
    ENTRY_POINT_GROUP,
    ExpertInfo,
    PluginHost,
    PluginInfo,
    UPRMPluginWarning,
    available_experts,
    expert_infos,
    get_expert_class,
    get_plugin_host,
    reset_plugins,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExpertInfo",
    "PluginHost",
    "PluginInfo",
    "UPRMPluginWarning",
    "available_experts",
    "build_experts",
    "expert_infos",
    "expert_seed",
    "get_expert_class",
    "get_plugin_host",
    "hookimpl",
    "hookspec",
    "parse_expert_options",
    "reset_plugins",
    "resolve_expert_names",
]
