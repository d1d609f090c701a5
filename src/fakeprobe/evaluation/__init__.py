"""Measuring models: labelled evaluation with perturbations, held-out scoring, fake clips for benchmarks."""
