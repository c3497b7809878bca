"""fastvid: ask Video LLMs about videos, several times cheaper with FastVID token pruning.

FastVID: Shen et al., "FastVID: Dynamic Density Pruning for Fast Video Large Language Models",
NeurIPS 2025, arXiv 2503.11187.
"""

__version__ = "0.1.0"
