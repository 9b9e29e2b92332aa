"""The plugin module named by the ``pose`` entry point: pluggy hook implementations only."""

import uprm


@uprm.hookimpl
def uprm_register_experts():
    from uprm_expert_pose.expert import PoseExpert

    return [PoseExpert]
