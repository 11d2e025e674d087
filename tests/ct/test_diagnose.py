from __future__ import annotations

import pandas as pd
import pytest

from covtool.core.errors import ParameterError
from covtool.ct.diagnose import (
    Threshold,
    evaluate,
    negative_name,
    parse_threshold,
    patient_counts,
    patient_decision,
    patient_table,
    positive_class,
    summary,
    threshold_sweep,
)


def test_threshold_reading():
    assert parse_threshold("0") == Threshold("count", 0.0)
    assert parse_threshold("2") == Threshold("count", 2.0)
    assert parse_threshold("0.1") == Threshold("fraction", 0.1)
    assert parse_threshold("1", rule="fraction") == Threshold("fraction", 1.0)
    assert parse_threshold("0.5", rule="mean-prob") == Threshold("mean-prob", 0.5)
    for bad, rule in [("-1", None), ("1.5", "count"), ("0", "fraction"), ("x", None), ("1", "mean-prob")]:
        with pytest.raises(ParameterError) as err:   # the CLI shows it as --threshold
            parse_threshold(bad, rule)
        assert err.value.param == "threshold" and "--" not in str(err.value)
    with pytest.raises(ParameterError, match="must be one of count, fraction, mean-prob") as err:
        parse_threshold("1", "majority")
    assert err.value.param == "rule"


def test_positive_class_is_given_or_the_covid_one():
    assert positive_class(["COVID-19", "normal"], None) == "COVID-19"
    assert positive_class(["covid", "normal"], "normal") == "normal"
    # COVID-CT's own labels: NonCOVID is not a second COVID class (was: "cannot tell"), as in eval
    assert positive_class(["COVID", "NonCOVID"], None) == "COVID"
    assert positive_class(["non_covid", "covid-19", "cap"], None) == "covid-19"
    with pytest.raises(ParameterError, match="'flu' is not one of the model's classes "
                       r"\(covid, normal\)") as err:
        positive_class(["covid", "normal"], "flu")
    assert err.value.param == "positive"
    with pytest.raises(ParameterError, match="cannot tell the positive class among a, b"):
        positive_class(["a", "b"], None)
    assert negative_name(["covid", "normal"], "covid") == "normal"
    assert negative_name(["covid", "cap", "normal"], "covid") == "not-covid"


def test_evaluation_and_summary_of_patient_rows():
    rows = [{"group": "A", "selected": 10, "positive": 3, "mean_prob": 0.4, "decision": "covid", "seconds": 1.0},
            {"group": "B", "selected": 10, "positive": 0, "mean_prob": 0.1, "decision": "normal", "seconds": 3.0},
            {"group": "C", "selected": 0, "positive": 0, "mean_prob": float("nan"),
             "decision": "undetermined", "seconds": 2.0},
            {"group": "D", "selected": 5, "positive": 1, "mean_prob": 0.3, "decision": "covid", "seconds": 2.0}]
    labels = {"A": "covid", "B": "covid", "C": "normal"}         # D's label is not known
    t = parse_threshold("0.25")
    counts, sweep = evaluate(rows, labels, "covid", "normal", t)
    assert counts == {"positive_correct": 1, "positive_called_negative": 1, "negative_correct": 0,
                      "negative_called_positive": 0, "undetermined": 1, "correct": 1, "wrong": 1}
    assert len(sweep) == 12 and sweep.iloc[-1][["rule", "threshold"]].tolist() == ["fraction", 0.25]
    at3 = sweep[(sweep["rule"] == "count") & (sweep["threshold"] == 3)].iloc[0]
    assert at3["positive_called_negative"] == 2 and at3["undetermined"] == 1   # A: 3 is not > 3
    s = summary(rows, "covid", "normal", t)
    assert s == {"patients": 4, "positive": 2, "negative": 1, "undetermined": 1,
                 "threshold": {"rule": "fraction", "value": 0.25}, "positive_class": "covid",
                 "seconds_per_patient": 2.0}


def test_count_rule_is_strictly_more_than_the_threshold():
    t0 = parse_threshold("0")
    assert patient_decision(20, 1, t0, "covid", "normal") == "covid"     # one slice suffices
    assert patient_decision(20, 0, t0, "covid", "normal") == "normal"
    t2 = parse_threshold("2")
    assert patient_decision(20, 2, t2, "covid", "normal") == "normal"
    assert patient_decision(20, 3, t2, "covid", "normal") == "covid"


def test_fraction_rule_is_at_least_one_tenth():
    t = parse_threshold("0.1")
    assert patient_decision(30, 3, t, "covid", "normal") == "covid"      # 3 >= 0.1 * 30
    assert patient_decision(30, 2, t, "covid", "normal") == "normal"
    assert patient_decision(5, 1, t, "covid", "normal") == "covid"       # 1 >= 0.5
    assert patient_decision(5, 0, t, "covid", "normal") == "normal"      # never with no slice


def test_no_selected_slice_is_undetermined():
    assert patient_decision(0, 0, parse_threshold("0"), "covid", "normal") == "undetermined"


def test_patient_table_and_counts():
    slices = pd.DataFrame({
        "group": ["a"] * 4 + ["b"] * 3 + ["c"] * 2,
        "selected": [True, True, True, False, True, True, False, False, False],
        "pred": ["covid", "normal", "normal", "", "normal", "normal", "", "", ""],
        "prob_covid": [0.9, 0.2, 0.1, 0, 0.3, 0.4, 0, 0, 0],
    })
    t = patient_table(slices, parse_threshold("0"), "covid", "normal", "prob_covid")
    assert t["group"].tolist() == ["a", "b", "c"]
    assert t["slices"].tolist() == [4, 3, 2]
    assert t["selected"].tolist() == [3, 2, 0]
    assert t["positive"].tolist() == [1, 0, 0]
    assert t["fraction"].iloc[0] == pytest.approx(1 / 3)
    assert t["mean_prob"].iloc[1] == pytest.approx(0.35)
    assert t["decision"].tolist() == ["covid", "normal", "undetermined"]
    c = patient_counts(t["decision"], ["covid", "covid", "normal"], "covid")
    assert c == {"positive_correct": 1, "positive_called_negative": 1, "negative_correct": 0,
                 "negative_called_positive": 0, "undetermined": 1, "correct": 1, "wrong": 1}
    sweep = threshold_sweep(t, ["covid", "covid", "normal"], "covid", "normal",
                            [parse_threshold("0"), parse_threshold("0.5"), parse_threshold("0.3", "mean-prob")])
    assert sweep["positive_correct"].tolist() == [1, 0, 2]
    assert sweep["wrong"].tolist() == [1, 2, 0]
