"""Video-token pruning, pure torch: FastVID (DySeg, STPrune = ATS + DTM).

>>> from fastvid_cli.pruning import FastVIDConfig, fastvid_prune
>>> result = fastvid_prune(video_tokens, frame_features, saliency, FastVIDConfig(retention_ratio=0.1))
"""

from .ats import select_salient
from .config import FastVIDConfig, FrameBudget
from .dtm import anchor_counts, density_merge, density_scores
from .dyseg import Segmentation, dyseg, transition_similarity
from .fastvid import PruneResult, fastvid_prune, spatiotemporal_prune

__all__ = [
    "FastVIDConfig",
    "FrameBudget",
    "PruneResult",
    "Segmentation",
    "anchor_counts",
    "density_merge",
    "density_scores",
    "dyseg",
    "fastvid_prune",
    "select_salient",
    "spatiotemporal_prune",
    "transition_similarity",
]
