"""Evaluation: the papers' metrics from predictions, prediction of a trained run, reports."""
