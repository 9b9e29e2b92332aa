# The public names of ``uprm.testing`` (its ``__all__``), one list: lazy-loader reads these
# imports to load each name on first use (uprm/testing/__init__.py), type checkers read them
# as they are. Only ``from .module import name as name`` lines (lazy-loader's stub format).

from .experts import ColourExpert as ColourExpert
from .fixtures import isolated_plugins as isolated_plugins
from .fixtures import overfit as overfit
from .fixtures import random_video_tokens as random_video_tokens
from .fixtures import synthetic_clip as synthetic_clip
from .fixtures import tiny_context as tiny_context

# the pytest test suite: the only name that needs pytest
from .standard import ExpertTests as ExpertTests
