"""The classifier: architectures, checkpoints, inference, calibration, metrics and score aggregation."""
