from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from covtool.evaluation.metrics import binary_auc, classification_metrics
from covtool.evaluation.report import confusion_frame, predictions_frame


def _fixed(n=40, k=3, seed=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    probs[y == 0, 0] += 0.4  # better than chance for class 0
    return y, probs / probs.sum(axis=1, keepdims=True)


def test_every_metric_matches_scikit_learn():
    y, probs = _fixed()
    classes = ["adeno", "corona", "ebola"]
    m = classification_metrics(y, probs, classes)
    pred = probs.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_precision"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert m["macro_recall"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    cm = skm.confusion_matrix(y, pred, labels=[0, 1, 2])
    assert m["confusion"] == cm.tolist()
    for i, name in enumerate(classes):
        c = m["per_class"][name]
        tp, fp, fn = cm[i, i], cm[:, i].sum() - cm[i, i], cm[i, :].sum() - cm[i, i]
        tn = cm.sum() - tp - fp - fn
        assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (tp, fp, fn, tn)
        assert c["sensitivity"] == pytest.approx(skm.recall_score(y == i, pred == i))
        assert c["specificity"] == pytest.approx(skm.recall_score(y != i, pred != i))
        assert c["precision"] == pytest.approx(skm.precision_score(y == i, pred == i, zero_division=0))
        assert c["auc"] == pytest.approx(skm.roc_auc_score(y == i, probs[:, i]))


def test_hand_computed_binary_case_with_ties_and_a_class_never_predicted():
    # 4 covid, 2 normal; every item predicted covid
    y = np.array([0, 0, 0, 0, 1, 1])
    p_normal = np.array([0.1, 0.3, 0.3, 0.2, 0.3, 0.4])
    probs = np.stack([1 - p_normal, p_normal], axis=1)
    m = classification_metrics(y, probs, ["covid", "normal"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    covid, normal = m["per_class"]["covid"], m["per_class"]["normal"]
    assert (covid["tp"], covid["fp"], covid["fn"], covid["tn"]) == (4, 2, 0, 0)
    assert covid["sensitivity"] == 1.0 and covid["specificity"] == 0.0
    assert covid["precision"] == pytest.approx(4 / 6)
    assert normal["precision"] == 0.0 and normal["sensitivity"] == 0.0
    assert m["macro_precision"] == pytest.approx((4 / 6 + 0) / 2)
    assert m["macro_f1"] == pytest.approx((2 * (4 / 6) / (1 + 4 / 6)) / 2)
    # AUC by hand: pairs (normal score > covid score) + 0.5 ties over 2 * 4 pairs
    # 0.3 vs (0.1, 0.3, 0.3, 0.2): 2 wins + 2 ties = 3; 0.4: 4 wins -> 7 / 8
    assert m["auc"] == pytest.approx(7 / 8) and m["auc_binary"] == pytest.approx(7 / 8)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p_normal))


def test_auc_is_undefined_without_both_sides():
    assert binary_auc(np.array([True, True]), np.array([0.2, 0.3])) is None
    m = classification_metrics(np.array([0, 0]), np.array([[0.9, 0.1, 0.0], [0.6, 0.3, 0.1]]),
                               ["a", "b", "c"])
    assert m["per_class"]["a"]["auc"] is None and m["auc"] is None
    assert m["macro_recall"] == 1.0  # only class a is present among labels and predictions


def test_prediction_and_confusion_tables():
    import pandas as pd

    df = pd.DataFrame({"id": ["i1", "i2"], "path": ["a.png", "b.png"], "label": ["x", "y"],
                       "extra": ["k", "l"]})
    probs = np.array([[0.8, 0.2], [0.4, 0.6]], dtype=np.float32)
    out = predictions_frame(df, probs, ["x", "y"])
    assert list(out.columns) == ["id", "path", "label", "extra", "pred", "prob_x", "prob_y"]
    assert out["pred"].tolist() == ["x", "y"] and out["prob_y"].tolist() == ["0.200000", "0.600000"]
    cm = confusion_frame(np.array([[3, 1], [0, 2]]), ["x", "y"])
    assert cm.loc["x", "y"] == 1 and cm.loc["y", "y"] == 2


def _covid_case():
    # true: 5 COVID, 5 NonCOVID; predicted COVID for 4 + 3 of them
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 0, 1, 0, 0, 0, 1, 1])
    probs = np.where(pred[:, None] == np.arange(2), 0.8, 0.2)
    return y, pred, probs


def test_binary_f1_is_the_positive_class_s_not_the_macro_average():
    """COVID-CT's F1 is the COVID class's binary F1; covtool compared its macro F1 with it."""
    y, pred, probs = _covid_case()
    m = classification_metrics(y, probs, ["COVID", "NonCOVID"], positive="COVID")
    assert m["positive_class"] == "COVID"
    # hand: TP 4, FP 3, FN 1 -> P 4/7, R 4/5, F1 2PR/(P+R) = 8/12
    assert m["precision"] == pytest.approx(4 / 7) and m["recall"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label=0, average="binary"))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["f1"] != pytest.approx(m["macro_f1"])
    # COVID-CTset Table 9: per-class accuracy (TP + TN) / N and the correct / wrong counts
    assert (m["correct"], m["wrong"]) == (6, 4)
    assert m["per_class"]["COVID"]["accuracy"] == pytest.approx((4 + 2) / 10)
    assert m["per_class"]["NonCOVID"]["accuracy"] == pytest.approx(0.6)
    none = classification_metrics(y, probs, ["COVID", "NonCOVID"])
    assert none["positive_class"] is None and none["f1"] is None and none["precision"] is None


@pytest.mark.parametrize(("classes", "expected"), [
    (["COVID", "NonCOVID"], "COVID"), (["NonCOVID", "COVID"], "COVID"),
    (["covid", "normal"], "covid"), (["non-covid", "Covid-19"], "Covid-19"),
    (["not_covid", "covid"], "covid"), (["adeno", "corona"], "corona"),
    (["covid", "normal", "cap"], None),
])
def test_the_default_positive_class_is_the_label_meaning_covid(classes, expected):
    from covtool.evaluation.metrics import positive_class

    assert positive_class(classes) == expected


def test_a_named_positive_class_must_be_a_class_and_two_covid_labels_need_one():
    from covtool.core.errors import ParameterError
    from covtool.evaluation.metrics import positive_class

    assert positive_class(["adeno", "corona"], "corona") == "corona"
    assert positive_class(["a", "b", "c"], "c") == "c"
    with pytest.raises(ParameterError, match="one of the run's classes") as exc:
        positive_class(["COVID", "NonCOVID"], "covid")
    assert exc.value.param == "positive_class"
    with pytest.raises(ParameterError, match="more than one class means COVID"):
        positive_class(["covid-a", "covid-b"])


def test_eval_refuses_a_bad_positive_class_before_any_work(tmp_path):
    """Exit 2 naming --positive-class, from the run's config, before the manifest or TensorFlow."""
    import json

    from typer.testing import CliRunner

    from covtool.cli.app import app

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"classes": ["covid-a", "covid-b"]}))
    r = CliRunner().invoke(app, ["eval", str(run), str(tmp_path / "none.csv"),
                                 "-d", str(tmp_path / "ev")])
    assert r.exit_code == 2 and "--positive-class" in r.output and "more than one" in r.output
    r = CliRunner().invoke(app, ["eval", str(run), str(tmp_path / "none.csv"),
                                 "--positive-class", "x", "-d", str(tmp_path / "ev")])
    assert r.exit_code == 2 and "--positive-class: must be one of" in r.output
    assert not (tmp_path / "ev").exists()


def test_the_rich_table_shows_the_binary_figures_and_table_9_s_columns():
    from rich.console import Console

    from covtool.cli.eval import metrics_table

    y, _, probs = _covid_case()
    m = classification_metrics(y, probs, ["COVID", "NonCOVID"], positive="COVID")
    console = Console(width=200, record=True)
    console.print(metrics_table(m))
    text = console.export_text()
    assert "COVID (positive): P 0.571   R 0.800   F1 0.667" in text
    assert "macro F1 0.583" in text and "6 correct, 4 wrong" in text
    header = next(ln for ln in text.splitlines() if "TP" in ln)
    assert header.split("┃")[1:-1][5].strip() == "accuracy"
    covid = next(ln for ln in text.splitlines() if ln.startswith("│ COVID "))
    assert [c.strip() for c in covid.split("│")[1:-1]][1:6] == ["4", "3", "1", "2", "0.600"]
