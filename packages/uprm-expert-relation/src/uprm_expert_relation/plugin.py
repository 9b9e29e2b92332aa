"""The plugin module named by the ``relation`` entry point: pluggy hook implementations only.

Nothing heavy is imported here or by the expert's module at import time: torch-geometric
is imported when an expert is built, ultralytics when a detector is loaded.
"""

import uprm


@uprm.hookimpl
def uprm_register_experts():
    from uprm_expert_relation.expert import RelationExpert

    return [RelationExpert]
