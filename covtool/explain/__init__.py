"""Grad-CAM explanations of trained classifiers (COVID-CTset Fig. 12)."""
