"""The built-in plugin of uprm-core: registers the coarse video expert through the same
hook as any external plugin."""

from uprm.plugins.hookspecs import hookimpl


@hookimpl
def uprm_register_experts():
    from uprm.experts.coarse import CoarseExpert

    return [CoarseExpert]
