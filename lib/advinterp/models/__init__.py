"""Architectures with their input normalisation, layer recording, predictions and accuracy."""
