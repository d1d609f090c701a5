"""Training: crop extraction, datasets and splits, self-blending, augmentation, the training loop."""
