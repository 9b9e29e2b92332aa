# The public names of ``uprm`` (its ``__all__``), one list: lazy-loader reads these imports
# to load each name on first use (uprm/__init__.py), type checkers read them as they are.
# Only ``from .module import name as name`` lines (lazy-loader's stub format; ``as name``
# re-exports the name to type checkers).

from . import watch as watch
from ._version import __version__ as __version__
from .ablation import ablate as ablate
from .adaptation import adapt as adapt
from .detection import detect as detect
from .errors import AnnotationError as AnnotationError
from .errors import BackboneNotFoundError as BackboneNotFoundError
from .errors import CacheError as CacheError
from .errors import CheckpointError as CheckpointError
from .errors import ConfigError as ConfigError
from .errors import DuplicateExpertError as DuplicateExpertError
from .errors import ExpertOutputError as ExpertOutputError
from .errors import MissingExpertError as MissingExpertError
from .errors import PluginError as PluginError
from .errors import RecordError as RecordError
from .errors import UnknownExpertError as UnknownExpertError
from .errors import UPRMError as UPRMError
from .errors import VideoError as VideoError
from .evaluation import evaluate as evaluate
from .evaluation import score_predictions as score_predictions
from .experts.base import Expert as Expert
from .experts.base import ExpertContext as ExpertContext
from .inference.answers import ClipAnswers as ClipAnswers
from .inference.segments import Segment as Segment
from .inference.segments import parse_segments as parse_segments
from .modeling.config import UPRMConfig as UPRMConfig
from .modeling.loading import LoadedModel as LoadedModel
from .modeling.loading import load_model as load_model
from .modeling.model import UPRMModel as UPRMModel
from .modeling.model import UPRMOutput as UPRMOutput
from .modeling.model import build_model as build_model
from .moe.block import UPEBlock as UPEBlock
from .moe.block import UPEOutput as UPEOutput
from .moe.losses import tradeoff_z_loss as tradeoff_z_loss
from .moe.router import BasicRouter as BasicRouter
from .moe.router import TradeoffRouter as TradeoffRouter
from .plugins.factory import build_experts as build_experts
from .plugins.hookspecs import hookimpl as hookimpl
from .plugins.manager import available_experts as available_experts
from .plugins.manager import expert_infos as expert_infos
from .plugins.manager import get_expert_class as get_expert_class
from .plugins.manager import reset_plugins as reset_plugins
from .training import train as train
from .types import VideoClip as VideoClip
