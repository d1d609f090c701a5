"""Scanning a file: analysis of sampled frames, the Detector, evidence, the worker pool."""
