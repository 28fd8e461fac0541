"""Evaluation: labelled sets (datasets), the figures (metrics), running a detector over a set (run)."""
