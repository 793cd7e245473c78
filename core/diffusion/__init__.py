"""Diffusion models on vectors: the score network, the DSM loss and the Euler-Maruyama generator.

The math: docs/diffusion-model.md.
"""
