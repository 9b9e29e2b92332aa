"""The plugin module named by the entry point: pluggy hook implementations only."""

import uprm


@uprm.hookimpl
def uprm_register_experts():
    from uprm_expert_motion.expert import MotionExpert

    return [MotionExpert]
