"""Nearest-training-neighbour distances: copies of training points show up as tiny distances.

docs/test-metrics.md#memorization.
"""

from __future__ import annotations

import torch

from ..bounds.chunking import rows_per_block


def nearest_neighbour_distances(query: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """Distance from each query row to its nearest reference row, chunked; ``exclude_self`` for query is reference."""
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        rows = rows_per_block(reference.shape[0], query.shape[1])
        out = []
        for start in range(0, query.shape[0], rows):
            dist = torch.cdist(query[start : start + rows], reference)
            if exclude_self:
                idx = torch.arange(start, start + dist.shape[0], device=dist.device)
                dist[torch.arange(dist.shape[0], device=dist.device), idx] = float("inf")
            out.append(dist.min(dim=1).values)
        return torch.cat(out)


def memorization_summary(generated: torch.Tensor, train: torch.Tensor) -> dict[str, float]:
    """Mean, median and minimum generated-to-train distance, beside the train set's own median spacing.

    ``nn_copy_fraction`` is the share of generated points closer to a training point than a third of that
    spacing: near 0 for a model that generalizes, large for one that copies its training set.
    """
    gen_nn = nearest_neighbour_distances(generated, train)
    train_nn = nearest_neighbour_distances(train, train, exclude_self=True)
    spacing = float(train_nn.median())
    return {
        "nn_dist_mean": float(gen_nn.mean()),
        "nn_dist_median": float(gen_nn.median()),
        "nn_dist_min": float(gen_nn.min()),
        "train_nn_median": spacing,
        "nn_copy_fraction": float((gen_nn < spacing / 3).double().mean()),
    }
