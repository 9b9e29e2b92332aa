"""Evaluation of DeepSVU (paper §4.3; Tables 1-5, Fig. 5): ``uprm eval`` and ``uprm.evaluate``.

>>> import uprm.evaluation as ev
>>> report = ev.evaluate("runs/uprm", "world/instructions/synthetic_test.json",
...                      cache="cache", out="runs/uprm/eval")           # doctest: +SKIP
>>> report["fnr"], report["f2"], report["map"]["average"]            # doctest: +SKIP
>>> ev.score_predictions("other/predictions.json", "gt.json")          # doctest: +SKIP

How a model is evaluated (the choices the paper leaves open; docs/evaluation.md says
the same for users):

- **Unit: the clip.** Each distinct clip (video + window) of the identify/locate/attribute
  records (of ``split`` when given) is run once through ``model.answer`` — the experts and
  the router once, the questions batched, ``batch_size`` clips at a time; features from
  the feature cache when its entry is valid, else extracted online. Each record then
  takes the answer to its own task (``answers.jsonl``: question, answer, reference).
- **Predictions** are per video in seconds of the video: window start + the locate
  answer's times, only when the identify answer says yes (``ClipAnswers.segments``), each
  scored ``P(yes) × geometric-mean probability of the locate answer``
  (``predictions.json``, ActivityNet results layout).
- **Ground truth** comes from the records (``segments`` + window start; a video's threat
  segments are the union over its windows; duration from ``duration``, else the largest
  window end, else the decoded file) or from ``ground_truth`` (an ActivityNet file, or an
  instruction JSON).
- **FNR, F2** (the paper's identifying columns) are frame-level as DATA.md says: binary
  arrays of ``rate`` samples per second (1: per second) over each video's duration
  (``uprm.metrics.segments_to_frames``: a sample is positive when its centre lies in a
  segment), concatenated over the videos; truth = the ground-truth segments, prediction
  = the predicted segments. **mAP@tIoU** (locating): ActivityNet's detection AP,
  class-agnostic, at the dataset's thresholds (``dataset="ucf"``: 0.1/0.2/0.3; ``"cuva"``:
  0.1/0.3/0.5; or ``thresholds``) and their average. **SB, ROUGE-L, BLEU-4**
  (attributing): the attribute records only, the cause in the answer (without "The
  threat is attributed to") against the record's causes joined with "; ".
  **Per-category FNR** (Tables 4/5): the same frame arrays grouped by each video's
  category. **Fig. 5**: the router's mean expert weights of the clips per category.
  Categories are listed by name, or with ``taxonomy`` (a site's, ``uprm.taxonomy``) in
  its order, only those the ground truth has; every ground-truth label must then be one
  of its categories (``UnknownCategoryError`` names the label, the video and both files).
- **The field's extras**: frame-level ROC-AUC and AP of per-second threat scores —
  each sample takes the highest, over the clips covering it, of P(yes) when it lies in
  that clip's predicted segments, else 0.1 × P(yes) (0 when no clip covers it; scoring
  predictions without a model: the highest score of the segments containing it);
  video-level FNR/F2/precision/recall of the identify answer (a video is flagged when
  any of its windows says yes); temporal grounding mIoU and R@0.3/0.5/0.7 of each locate
  record's k-th answered segment against its k-th annotated one.
- **Units** are the paper's: FNR, F2, mAP and the extras in percent; SB and ROUGE-L
  0-1; BLEU-4 0-100; GPT 1-10 (human 1-5). Undefined numbers (0/0) are ``None``.
- **Intervals**: each number of the Table 1/2 row and per category gets a 95 % interval
  from a bootstrap over videos (``bootstrap=1000`` resamples, ``0``: none; the report's
  ``"ci"`` and ``"bootstrap"``); ``videos.json`` keeps the per-video units resampled
  (:mod:`~uprm.evaluation.intervals`), and :func:`compare` pairs two evaluations by
  video (:mod:`~uprm.evaluation.comparison`).
- **Resume**: with ``out``, each finished batch's answers go to ``clips.jsonl`` at once
  (flushed), behind a fingerprint of the checkpoint, the data and the settings; a rerun
  answers only the batches missing (same batches, so the same floats) and every final
  file is written atomically, so a killed evaluation resumes and ends with the files an
  uninterrupted run writes.
- **Bad input** is an :class:`EvaluationError` naming the file and the problem: a
  missing checkpoint, data without records of the split, a predictions file not in the
  ActivityNet results layout, predictions of videos the ground truth lacks (unless
  ``extra_videos="ignore"`` drops them or ``"false-positive"`` counts them as false
  alarms of all-negative videos), a run folder holding another evaluation's answers.

Modules: :mod:`~uprm.evaluation.api` (``evaluate``, ``score_predictions``),
:mod:`~uprm.evaluation.run` (clips, resume), :mod:`~uprm.evaluation.truth`,
:mod:`~uprm.evaluation.scoring`, :mod:`~uprm.evaluation.report`,
:mod:`~uprm.evaluation.judge` (the GPT score), :mod:`~uprm.evaluation.human` (rating
sheets, Krippendorff's α). Names are imported on first use: ``import uprm.evaluation``
loads no torch.
"""

from uprm._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
