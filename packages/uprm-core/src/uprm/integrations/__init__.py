"""Bridges to optional third-party libraries, shared by the plugins that use them.

Each module imports its library only inside its functions, so the core keeps no hard
dependency on it: :mod:`uprm.integrations.ultralytics` (YOLO pose and detection models,
for ``uprm-expert-pose`` and ``uprm-expert-relation``).
"""
