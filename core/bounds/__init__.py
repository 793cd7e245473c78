"""Generalization bound estimators (diffusion-bound.md, vae-bound.md)."""
