"""Chunk sizes that keep the pairwise-distance blocks of the estimators within a memory budget.

Why and how the distances are chunked: docs/diffusion-bound.md#encoder_info.
"""

from __future__ import annotations

DEFAULT_BLOCK_BYTES = 64 * 2**20


def rows_per_block(n_cols: int, row_width: int = 1, bytes_per_value: int = 4, budget: int = DEFAULT_BLOCK_BYTES) -> int:
    """How many rows of ``n_cols`` values (each row also holding ``row_width`` inputs) fit the budget; at least 1."""
    per_row = max(1, (n_cols + row_width) * bytes_per_value)
    return max(1, budget // per_row)
