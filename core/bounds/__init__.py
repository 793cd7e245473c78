"""Generalization bound estimators (docs/diffusion-bound.md; the VAE bounds, docs/vae-bound.md, are in core/vae)."""
