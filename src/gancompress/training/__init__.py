"""Training wing: the one training loop, its tasks and the GAN losses."""
