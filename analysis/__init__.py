"""vaelab analysis stages: data, VAE encoding with a latent cache, classifiers, figures."""
