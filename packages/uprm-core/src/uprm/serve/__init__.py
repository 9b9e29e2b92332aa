"""``uprm serve``: a detection service — a REST API for programs and a web page for
people, in one process, with one worker process holding the model.

Install with ``pip install "uprm-core[serve]"``. User guide: docs/serve.md.

>>> from uprm.serve import ServeConfig, create_app                     # doctest: +SKIP
>>> app = create_app(ServeConfig(checkpoint="runs/uprm", data_dir="serve-data"))

Layout of the package: :mod:`~uprm.serve.config` (settings), :mod:`~uprm.serve.store`
(the SQLite job queue), :mod:`~uprm.serve.media` (content sniffing, probing, the media
root), :mod:`~uprm.serve.upload` (streaming uploads), :mod:`~uprm.serve.auth` (token and
cookie), :mod:`~uprm.serve.errors` (problem details), :mod:`~uprm.serve.app` (routes),
:mod:`~uprm.serve.supervisor` and :mod:`~uprm.serve.worker` (the worker process),
:mod:`~uprm.serve.review` (reviews and the labels they make), :mod:`~uprm.serve.models`
(switching the checkpoint between jobs), :mod:`~uprm.serve.server` (binding and running
uvicorn), ``static/`` (the page).
"""

from uprm._lazy import attach_stub

__getattr__, __dir__, __all__ = attach_stub(__name__, __file__)
