from covtool.core.naming import natural_sorted, safe_id


def test_natural_order():
    names = ["IM10.tif", "IM2.tif", "IM1.tif", "im3.tif", "IM00011.tif"]
    assert natural_sorted(names) == ["IM1.tif", "IM2.tif", "im3.tif", "IM10.tif", "IM00011.tif"]


def test_safe_id():
    assert safe_id("patient 1", "SR/2", "IM0001") == "patient-1_SR-2_IM0001"
    assert safe_id("", "a") == "a"
    assert safe_id("///") == "item"
