"""``import uprm.metrics`` stays light; the public names are where DESIGN §4 puts them."""

import doctest
import subprocess
import sys

import uprm
import uprm.metrics


def test_import_loads_no_heavy_package():
    code = (
        "import sys, uprm, uprm.metrics; uprm.metrics.f2_score([1], [1]);"
        "uprm.metrics.segments_to_frames([(0, 1)], 2, 1);"
        "uprm.metrics.map_at_tiou([('v', 0, 1, 1.0)], [('v', 0, 1)], [0.5]);"
        "print(sorted(m for m in ('torch', 'sklearn', 'sentence_transformers', 'transformers',"
        " 'rouge_score', 'sacrebleu', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names():
    for name in (
        "false_negative_rate",
        "f2_score",
        "segments_to_frames",
        "map_at_tiou",
        "rouge_l",
        "bleu4",
        "sbert_similarity",
        "frame_roc_auc",
        "frame_average_precision",
        "video_identification",
        "temporal_grounding",
        "MetricInputError",
    ):
        assert callable(getattr(uprm.metrics, name)), name
    assert uprm.metrics.f2_score is uprm.metrics.classification.f2_score
    assert uprm.metrics.MetricInputError.__mro__[1:3] == (uprm.UPRMError, ValueError)


def test_module_example():
    assert doctest.testmod(uprm.metrics).failed == 0
