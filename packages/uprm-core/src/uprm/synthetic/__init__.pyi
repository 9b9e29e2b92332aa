# The public names of ``uprm.synthetic`` (its ``__all__``), one list: lazy-loader reads these
# imports to load each name on first use (uprm/synthetic/__init__.py), type checkers read them
# as they are. Only ``from .module import name as name`` lines (lazy-loader's stub format).

from .config import DESIGNS as DESIGNS
from .config import WorldConfig as WorldConfig
from .events import EVENT_SCENES as EVENT_SCENES
from .events import KEYED_CATEGORIES as KEYED_CATEGORIES
from .events import NORMAL as NORMAL
from .events import SITE_CATEGORIES as SITE_CATEGORIES
from .events import THREAT_CATEGORIES as THREAT_CATEGORIES
from .events import ThreatEvent as ThreatEvent
from .keyed import KEYED_DESIGN as KEYED_DESIGN
from .keyed import make_keyed_video as make_keyed_video
from .video import SyntheticVideo as SyntheticVideo
from .video import make_video as make_video
from .world import WORLD_FORMAT as WORLD_FORMAT
from .world import generate_world as generate_world
from .world import site_taxonomy as site_taxonomy

# defined in uprm.data.mp4: a stub names only this package's modules, and the world imports it
from .world import write_mp4 as write_mp4
