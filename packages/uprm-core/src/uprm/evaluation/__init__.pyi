# The public names of ``uprm.evaluation`` (its ``__all__``), one list: lazy-loader reads these
# imports to load each name on first use (uprm/evaluation/__init__.py), type checkers read them
# as they are. Only ``from .module import name as name`` lines (lazy-loader's stub format).

from . import answers as answers
from . import api as api
from . import comparison as comparison
from . import errors as errors
from . import human as human
from . import intervals as intervals
from . import judge as judge
from . import report as report
from . import run as run
from . import scoring as scoring
from . import truth as truth
from .answers import read_answers as read_answers
from .answers import write_answers as write_answers
from .api import DATASET_THRESHOLDS as DATASET_THRESHOLDS
from .api import EvalOptions as EvalOptions
from .api import evaluate as evaluate
from .api import resolve_thresholds as resolve_thresholds
from .api import score_predictions as score_predictions
from .comparison import compare as compare
from .errors import EvaluationError as EvaluationError
from .errors import JudgeError as JudgeError
from .errors import JudgeReplyError as JudgeReplyError
from .human import export_sheets as export_sheets
from .human import read_ratings as read_ratings
from .intervals import VideoUnits as VideoUnits
from .judge import JudgeConfig as JudgeConfig
from .judge import LLMJudge as LLMJudge
from .judge import Verdict as Verdict
from .truth import VideoTruth as VideoTruth
from .truth import read_ground_truth as read_ground_truth
from .truth import read_predictions as read_predictions
from .truth import truth_from_records as truth_from_records
