"""Evaluation metrics of DeepSVU (paper §4.3) and of the peers it is compared with.

Importing this module loads numpy only; scikit-learn, rouge-score, sacrebleu and
sentence-transformers are imported by the functions that need them (the ``metrics``
extra: ``pip install 'uprm-core[metrics]'``). Array inputs may be lists, numpy arrays or
torch tensors; malformed input raises :class:`MetricInputError` (a ``ValueError``)
naming the argument and the row.

Units — each function says its own; the rule:

===============================  ==========================================  =========
task                             function                                    unit
===============================  ==========================================  =========
identify (frames or seconds)     :func:`false_negative_rate`, :func:`f2_score`  0-1
identify (one answer per video)  :func:`video_identification`                0-1
identify (frame scores)          :func:`frame_roc_auc`,                       0-1
                                 :func:`frame_average_precision`
locate                           :func:`map_at_tiou` (ActivityNet AP)        percent
locate (one segment per query)   :func:`temporal_grounding` (mIoU, R@m)       percent
attribute                        :func:`rouge_l`, :func:`sbert_similarity`   0-1
attribute                        :func:`bleu4`                               0-100
===============================  ==========================================  =========

How sure a number is (:mod:`uprm.metrics.uncertainty`): :func:`bootstrap` intervals over
videos (and seeds), :func:`compare_paired` (paired bootstrap delta and permutation p),
:func:`holm`, :func:`probability_of_improvement`.

Single-number classification scores are fractions as in scikit-learn (multiply FNR and
F2 by 100 for the paper's tables); the multi-threshold tables are in percent as the
paper and the field print them; the text metrics keep their packages' scales, which are
also the paper's (SB and ROUGE 0-1, BLEU 0-100).

>>> from uprm.metrics import segments_to_frames, false_negative_rate, f2_score
>>> truth = segments_to_frames([(2, 6)], duration=10, rate=1)
>>> pred = segments_to_frames([(3, 8)], duration=10, rate=1)
>>> false_negative_rate(truth, pred), round(f2_score(truth, pred), 4)
(0.25, 0.7143)
"""

from uprm.metrics._inputs import MetricInputError
from uprm.metrics.classification import (
    confusion_counts,
    f2_score,
    false_negative_rate,
    frame_average_precision,
    frame_roc_auc,
    video_identification,
)
from uprm.metrics.detection import CUVA_THRESHOLDS, UCF_CRIME_THRESHOLDS, interpolated_ap, map_at_tiou, temporal_iou
from uprm.metrics.frames import num_samples, segments_to_frames
from uprm.metrics.grounding import GROUNDING_THRESHOLDS, temporal_grounding
from uprm.metrics.text import bleu4, rouge_l, rouge_l_scores, sbert_similarities, sbert_similarity
from uprm.metrics.uncertainty import (
    Bootstrap,
    Comparison,
    Estimate,
    bootstrap,
    compare_paired,
    holm,
    probability_of_improvement,
)

__all__ = [
    "CUVA_THRESHOLDS",
    "GROUNDING_THRESHOLDS",
    "UCF_CRIME_THRESHOLDS",
    "Bootstrap",
    "Comparison",
    "Estimate",
    "MetricInputError",
    "bleu4",
    "bootstrap",
    "compare_paired",
    "confusion_counts",
    "f2_score",
    "false_negative_rate",
    "frame_average_precision",
    "frame_roc_auc",
    "holm",
    "interpolated_ap",
    "map_at_tiou",
    "num_samples",
    "probability_of_improvement",
    "rouge_l",
    "rouge_l_scores",
    "sbert_similarities",
    "sbert_similarity",
    "segments_to_frames",
    "temporal_grounding",
    "temporal_iou",
    "video_identification",
]
