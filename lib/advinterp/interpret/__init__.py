"""Interpretation: top-K mining, patches, consistency, representation, class affinity, influence
and tracing, conductance, attribution metrics, model mutation and wrong-prediction detection."""
