"""uprm-expert-relation: the fine-grained object-relation expert (ORE) of UPRM.

``RelationExpert`` reads per-frame object graphs (RelTR-style scene-graph JSON, or an
ultralytics detector plus geometric/motion predicates) and enhances the coarse video
tokens with graph-convolution features of the objects (paper eq.4–5). Installing the
distribution registers it under the name ``relation`` (entry point group ``uprm``).
"""

from uprm_expert_relation.expert import RelationExpert

__all__ = ["RelationExpert"]
__version__ = "0.1.0"
