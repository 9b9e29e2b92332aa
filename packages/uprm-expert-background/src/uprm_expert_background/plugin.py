"""The plugin module named by the ``background`` entry point: pluggy hooks only.

The expert class is imported inside the hook, so listing plugins imports neither the
expert nor segment-anything (and torchvision).
"""

import uprm


@uprm.hookimpl
def uprm_register_experts():
    from uprm_expert_background.expert import BackgroundExpert

    return [BackgroundExpert]
