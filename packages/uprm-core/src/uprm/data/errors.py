"""The data layer's errors, defined with every other error class in :mod:`uprm.errors`.

Here so that ``uprm.data.VideoError`` (a name of ``uprm/data/__init__.pyi``) loads only
:mod:`uprm.errors`, not the decoder or the feature cache that raise it.
"""

from uprm.errors import AnnotationError, CacheError, RecordError, VideoError

__all__ = ["AnnotationError", "CacheError", "RecordError", "VideoError"]
