"""VAEs (docs/vae-bound.md): a Bernoulli or Gaussian MLP VAE, its reference generator, and training as records."""
