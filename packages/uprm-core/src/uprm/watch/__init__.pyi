# The public names of ``uprm.watch`` (its ``__all__``), one list: lazy-loader reads these
# imports to load each name on first use (uprm/watch/__init__.py), type checkers read them
# as they are. Only ``from .module import name as name`` lines (lazy-loader's stub format).
# The package itself is callable at run time: ``uprm.watch(...)`` is ``watch(...)``.

from .alerts import AlertLog as AlertLog
from .alerts import WebhookSender as WebhookSender
from .alerts import read_alerts as read_alerts
from .events import Event as Event
from .events import EventTracker as EventTracker
from .events import WindowScore as WindowScore
from .settings import WatchError as WatchError
from .settings import WatchSettings as WatchSettings
from .sources import Source as Source
from .sources import parse_source as parse_source
from .watcher import Watcher as Watcher
from .watcher import WatchReport as WatchReport
from .watcher import watch as watch
