"""COVID-CTset's patient-level decision: a patient is positive when enough selected slices are.

The paper (section 3, Tables 5 and 6) calls a patient COVID-19 when the number of selected slices
classified COVID "is more than the threshold", with two thresholds: 0 (one slice suffices) and one
tenth of the selected slices. The authors' notebook implements the second as
``covid_predicted >= 0.1 * n_selected`` ("at least one tenth"). covtool keeps both readings exact:

* ``count`` rule, threshold N (a whole number): positive when ``positive_slices > N``;
* ``fraction`` rule, threshold f in (0, 1]: positive when ``positive_slices >= f * selected`` and
  at least one slice is positive (so a patient with no COVID slice is never called COVID);
* ``mean-prob`` rule, threshold p: positive when the mean probability of the positive class over
  the selected slices is ``> p`` (an extension; not in the paper).

A patient with no selected slice is ``undetermined``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from covtool.core.errors import ParameterError

if TYPE_CHECKING:  # pandas costs half a second of start-up: imported where a table is built
    import pandas as pd

RULES = ("count", "fraction", "mean-prob")
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class Threshold:
    rule: str
    value: float

    def __str__(self) -> str:
        return f"{self.rule}:{self.value:g}"


def parse_threshold(text: str | float, rule: str | None = None) -> Threshold:
    """``0`` (a count) or ``0.1`` (a fraction); ``rule`` forces the reading.

    Whole numbers are counts and values in (0, 1) are fractions unless ``rule`` says otherwise.

    Raises
    ------
    ParameterError
        For ``threshold`` (not a number, or outside its rule's range) or ``rule`` (unknown).
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ParameterError("threshold", f"must be a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ParameterError("threshold", f"must be a non-negative number, got {text!r}")
    if rule is None:
        rule = "count" if value.is_integer() else "fraction"
    if rule not in RULES:
        raise ParameterError("rule", f"must be one of {', '.join(RULES)}, got {rule!r}")
    if rule == "count" and not value.is_integer():
        raise ParameterError("threshold", f"a count threshold must be a whole number, got {text!r}")
    if rule == "fraction" and not 0 < value <= 1:
        raise ParameterError("threshold", f"a fraction threshold must be in (0, 1], got {text!r}")
    if rule == "mean-prob" and not 0 <= value < 1:
        raise ParameterError("threshold", f"a mean-probability threshold must be in [0, 1), got {text!r}")
    return Threshold(rule, value)


def positive_class(classes: Sequence[str], given: str | None) -> str:
    """The class whose slices count as positive: ``given``, or the one label meaning COVID
    (:func:`covtool.evaluation.metrics.covid_labels`, eval's rule: ``COVID`` of
    ``COVID``/``NonCOVID``).

    Raises
    ------
    ParameterError
        For ``positive``: not one of ``classes``, or not given where no single class is 'covid'.
    """
    if given is not None:
        if given not in classes:
            raise ParameterError("positive", f"{given!r} is not one of the model's classes "
                                 f"({', '.join(classes)})")
        return given
    from covtool.evaluation.metrics import covid_labels

    hits = covid_labels(classes)
    if len(hits) != 1:
        raise ParameterError("positive", f"needed: cannot tell the positive class among {', '.join(classes)}")
    return hits[0]


def negative_name(classes: Sequence[str], positive: str) -> str:
    """The decision for a patient who is not positive: the other class of a two-class model."""
    others = [c for c in classes if c != positive]
    return others[0] if len(others) == 1 else f"not-{positive}"


def is_positive(n_selected: int, n_positive: int, threshold: Threshold,
                mean_prob: float | None = None) -> bool | None:
    """The rule for one patient; ``None`` when no slice was selected (undetermined)."""
    if n_selected <= 0:
        return None
    if threshold.rule == "count":
        return n_positive > threshold.value
    if threshold.rule == "fraction":
        return n_positive > 0 and n_positive >= threshold.value * n_selected
    if mean_prob is None:
        raise ValueError("the mean-prob rule needs the mean probability")
    return mean_prob > threshold.value


def patient_decision(n_selected: int, n_positive: int, threshold: Threshold, positive: str,
                     negative: str, mean_prob: float | None = None) -> str:
    """The class name the rule gives, or ``undetermined``."""
    verdict = is_positive(n_selected, n_positive, threshold, mean_prob)
    if verdict is None:
        return UNDETERMINED
    return positive if verdict else negative


def patient_table(slices: pd.DataFrame, threshold: Threshold, positive: str, negative: str,
                  prob_column: str) -> pd.DataFrame:
    """Per-patient counts and decisions from a per-slice table.

    Parameters
    ----------
    slices : DataFrame
        One row per slice with ``group``, ``selected`` (bool), ``pred`` (class name, for selected
        slices) and ``prob_column`` (the positive class's probability).

    Returns
    -------
    DataFrame
        ``group, slices, selected, positive, fraction, mean_prob, score, decision``, in the order
        the groups first appear. ``score`` is the fraction of positive selected slices.
    """
    import pandas as pd

    rows = []
    for group, g in slices.groupby("group", sort=False):
        sel = g[g["selected"].astype(bool)]
        n_sel = len(sel)
        n_pos = int((sel["pred"] == positive).sum()) if n_sel else 0
        mean_prob = float(sel[prob_column].astype(float).mean()) if n_sel else float("nan")
        frac = n_pos / n_sel if n_sel else float("nan")
        rows.append({"group": group, "slices": len(g), "selected": n_sel, "positive": n_pos,
                     "fraction": frac, "mean_prob": mean_prob, "score": frac,
                     "decision": patient_decision(n_sel, n_pos, threshold, positive, negative,
                                                  None if not n_sel else mean_prob)})
    return pd.DataFrame(rows, columns=["group", "slices", "selected", "positive", "fraction",
                                       "mean_prob", "score", "decision"])


def patient_counts(decisions: Sequence[str], truths: Sequence[str], positive: str) -> dict[str, int]:
    """The counts of the paper's Tables 5/6 for one threshold.

    Undetermined patients are counted apart and in neither "correct" column.
    """
    d = np.asarray(decisions, dtype=object)
    t = np.asarray(truths, dtype=object)
    pos_t, und = t == positive, d == UNDETERMINED
    pos_d = (d == positive) & ~und
    neg_d = ~pos_d & ~und
    out = {
        "positive_correct": int((pos_t & pos_d).sum()),
        "positive_called_negative": int((pos_t & neg_d).sum()),
        "negative_correct": int((~pos_t & neg_d).sum()),
        "negative_called_positive": int((~pos_t & pos_d).sum()),
        "undetermined": int(und.sum()),
    }
    out["correct"] = out["positive_correct"] + out["negative_correct"]
    out["wrong"] = out["positive_called_negative"] + out["negative_called_positive"]
    return out


def threshold_sweep(patients: pd.DataFrame, truths: Sequence[str], positive: str, negative: str,
                    thresholds: Sequence[Threshold]) -> pd.DataFrame:
    """Patients right and wrong at each threshold, so a user can choose one (Tables 5/6 style).

    ``patients`` is the output of :func:`patient_table` (any threshold); only its counts are used.
    """
    import pandas as pd

    rows = []
    for th in thresholds:
        dec = [patient_decision(int(r.selected), int(r.positive), th, positive, negative,
                                None if int(r.selected) == 0 else float(r.mean_prob))
               for r in patients.itertuples(index=False)]
        rows.append({"rule": th.rule, "threshold": th.value, **patient_counts(dec, truths, positive)})
    return pd.DataFrame(rows)


def default_sweep(max_count: int = 5) -> list[Threshold]:
    """Counts 0..max_count and fractions 0.05..0.5: the grid covtool reports by default."""
    counts = [Threshold("count", float(n)) for n in range(max_count + 1)]
    fracs = [Threshold("fraction", f) for f in (0.05, 0.1, 0.2, 0.3, 0.5)]
    return counts + fracs


#: the counts of :func:`patient_counts`, in the order of the paper's Tables 5/6
COUNT_KEYS = ("positive_correct", "positive_called_negative", "negative_correct",
              "negative_called_positive", "undetermined", "correct", "wrong")


def evaluate(patients: Sequence[dict], labels: dict[str, str], positive: str, negative: str,
             threshold: Threshold) -> tuple[dict[str, int], pd.DataFrame]:
    """The patient-level evaluation of the patients whose label is known: the counts at
    ``threshold`` (:func:`patient_counts`) and the sweep over :func:`default_sweep` and
    ``threshold`` (:func:`threshold_sweep`). ``patients`` are patient-diagnose's rows."""
    import pandas as pd

    known = pd.DataFrame([p for p in patients if p.get("group") in labels],
                         columns=["group", "selected", "positive", "mean_prob", "decision"])
    truths = [labels[g] for g in known["group"]]
    counts = patient_counts(known["decision"].tolist(), truths, positive)
    grid = default_sweep()
    if threshold not in grid:
        grid.append(threshold)
    return counts, threshold_sweep(known, truths, positive, negative, grid)


def summary(patients: Sequence[dict], positive: str, negative: str, threshold: Threshold) -> dict:
    """patient-diagnose's summary (``--metrics``, without the evaluation): patients per decision,
    the rule, the positive class and the mean seconds per patient."""
    decisions = [p.get("decision") for p in patients]
    seconds = [float(p["seconds"]) for p in patients if p.get("seconds") is not None]
    return {"patients": len(patients), "positive": decisions.count(positive),
            "negative": decisions.count(negative), "undetermined": decisions.count(UNDETERMINED),
            "threshold": {"rule": threshold.rule, "value": threshold.value},
            "positive_class": positive,
            "seconds_per_patient": float(np.mean(seconds)) if seconds else 0.0}
