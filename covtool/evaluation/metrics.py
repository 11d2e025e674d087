"""Classification metrics as the papers report them; pure numpy on label indices and probabilities.

* Accuracy; precision, recall and F1 **averaged over classes with equal weight** (the TEM paper:
  "averaged across all classes ... regardless of the number of instances in each class"). The
  average runs over the classes present among the true or the predicted labels (scikit-learn's
  convention); a class never predicted has precision 0.
* Per class: TP, FP, FN, TN, sensitivity (= recall), specificity, precision and the class's
  accuracy (TP + TN) / N (COVID-CTset Table 9, which also counts the correctly and wrongly
  classified images: ``correct``, ``wrong``).
* The binary precision, recall and F1 of one positive class (COVID-CT's "F1" is the F1 of the
  COVID class, not a macro average): ``precision``, ``recall``, ``f1`` with ``positive_class``.
  The positive class is named, or :func:`positive_class` finds the one label meaning COVID.
* ROC AUC: for two classes the binary AUC of the second class's probability; in general the
  macro average of one-vs-rest AUCs over the classes that have both positives and negatives in the
  true labels (the others' AUC is undefined and reported as null). Computed by the rank-sum
  (Mann-Whitney) formula with tied scores counted one half.
"""

from __future__ import annotations

import math
import re

import numpy as np

from covtool.core.errors import ParameterError

_NEGATED = re.compile(r"(non|not|no)$")


def covid_labels(classes) -> list[str]:
    """The labels that mean COVID: containing ``covid`` (any case, ignoring ``-``, ``_`` and
    spaces) not preceded by ``non``/``not``/``no`` (``COVID``, ``covid-19``; not ``NonCOVID``,
    ``non_covid``). One rule for eval's and patient-diagnose's default positive class."""
    found = []
    for name in classes:
        key = re.sub(r"[\s_\-]+", "", str(name).lower())
        at = key.find("covid")
        if at >= 0 and not _NEGATED.search(key[:at]):
            found.append(name)
    return found


def positive_class(classes: list[str], given: str | None = None) -> str | None:
    """The class whose binary precision, recall and F1 are reported.

    ``given`` must be one of ``classes``. Without it, for two classes: the one label containing
    ``covid`` (case-insensitive, ignoring ``-``, ``_``, spaces) not preceded by ``non``/``not``/
    ``no`` (``COVID`` of ``COVID``/``NonCOVID``; ``covid`` of ``covid``/``normal``). Two such labels
    is ambiguous: a ParameterError naming ``positive_class``. Two classes of which none means COVID:
    the second in the run's order (``classes[1]``, the class whose probability ``auc_binary``
    scores), so the binary figures the command contract promises for two classes are always
    there, with ``positive_class`` saying which class they are of. More than two classes: ``None``.
    """
    if given is not None and given != "":
        if given not in classes:
            raise ParameterError("positive_class", f"must be one of the run's classes "
                                                   f"({', '.join(classes)}); got {given!r}")
        return given
    if len(classes) != 2:
        return None
    found = covid_labels(classes)
    if len(found) > 1:
        raise ParameterError("positive_class", f"is needed: more than one class means COVID "
                                               f"({', '.join(found)}); name the positive one")
    return found[0] if found else classes[1]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts: rows true class, columns predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def binary_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for the boolean ``positive``; ``None`` when one side is empty."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties (1-based)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str],
                           positive: str | None = None) -> dict:
    """All of covtool's metrics for one set of predictions.

    Parameters
    ----------
    y_true : ndarray (N,), int
        True class indices into ``classes``.
    probs : ndarray (N, K), float
        Predicted probabilities, columns in ``classes`` order; the prediction is the arg-max.
    classes : list of str (K,)
    positive : str, optional
        The positive class of ``precision``, ``recall`` and ``f1`` (one of ``classes``); ``None``:
        those three are null.

    Returns
    -------
    dict
        ``accuracy``, ``correct``, ``wrong``, ``positive_class``, ``precision``, ``recall``,
        ``f1`` (the positive class's, binary; null without one), ``macro_precision``,
        ``macro_recall``, ``macro_f1``, ``auc``, ``auc_binary`` (two classes only, else null),
        ``per_class`` {name: {tp, fp, fn, tn, support, accuracy, sensitivity, specificity,
        precision, recall, f1, auc}}, ``confusion`` (K x K list), ``classes``, ``n``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(classes)
    if probs.ndim != 2 or probs.shape != (len(y_true), k):
        raise ValueError(f"probabilities of shape {probs.shape} for {len(y_true)} items and {k} classes")
    y_pred = probs.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(y_true, y_pred, k)
    n = int(cm.sum())
    per_class = {}
    present = []
    for i, name in enumerate(classes):
        tp = int(cm[i, i])
        fp = int(cm[:, i].sum() - tp)
        fn = int(cm[i, :].sum() - tp)
        tn = n - tp - fp - fn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        per_class[name] = {
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn,
            "accuracy": _ratio(tp + tn, n),
            "sensitivity": recall, "specificity": _ratio(tn, tn + fp),
            "precision": precision, "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "auc": binary_auc(y_true == i, probs[:, i]) if n else None,
        }
        if tp + fn > 0 or tp + fp > 0:
            present.append(name)

    def macro(key: str) -> float:
        return float(np.mean([per_class[c][key] for c in present])) if present else 0.0

    aucs = [per_class[c]["auc"] for c in classes if per_class[c]["auc"] is not None]
    auc_binary = per_class[classes[1]]["auc"] if k == 2 else None
    if positive is not None and positive not in per_class:
        raise ValueError(f"positive class {positive!r} is not one of {classes}")
    pos = per_class.get(positive, {})
    correct = int(np.trace(cm))
    return {
        "n": n,
        "classes": list(classes),
        "accuracy": _ratio(correct, n),
        "correct": correct,
        "wrong": n - correct,
        "positive_class": positive,
        "precision": pos.get("precision"),
        "recall": pos.get("recall"),
        "f1": pos.get("f1"),
        "macro_precision": macro("precision"),
        "macro_recall": macro("recall"),
        "macro_f1": macro("f1"),
        "auc": auc_binary if k == 2 else (float(np.mean(aucs)) if aucs else None),
        "auc_binary": auc_binary,
        "auc_macro_ovr": float(np.mean(aucs)) if aucs else None,
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def finite_or_none(value):
    """JSON has no NaN: map NaN/inf to null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
