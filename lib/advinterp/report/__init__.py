"""Reporting: results files and glued numbers, figures, the interactive neuron browser."""
