"""Objectives: each task supplies the head, the loss and the metrics for the one `train_step`."""
