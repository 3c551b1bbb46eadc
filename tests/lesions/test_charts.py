"""The SVG pictures parse as XML and draw what they claim."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from lesions.charts import Bar, Point, Series, burden_curve, spider_plot, waterfall_plot

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def test_the_burden_curve_draws_every_scan_and_the_pd_threshold():
    points = (Point(0, Decimal("50")), Point(56, Decimal("30")), Point(112, Decimal("40")))
    root = _parse(burden_curve(points, nadir=Decimal("30"), title="T1+T2"))
    line = root.find(".//svg:polyline", NS)
    assert len(line.get("points").split()) == 3
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "nadir 30 mm" in texts
    assert "PD threshold 36.0 mm" in texts  # 1.2 x 30 = 36 > 30 + 5


def test_the_pd_threshold_is_nadir_plus_5_mm_for_small_nadirs():
    root = _parse(burden_curve((Point(0, Decimal("10")),), nadir=Decimal("10"), title="t"))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "PD threshold 15.0 mm" in texts


def test_spider_plot_has_one_line_per_patient_coloured_by_group():
    series = (
        Series("P1", (Point(0, Decimal(0)), Point(60, Decimal(-35))), group="A"),
        Series("P2", (Point(0, Decimal(0)), Point(60, Decimal(25))), group="B"),
        Series("P3", (Point(0, Decimal(0)), Point(60, Decimal(5))), group="A"),
    )
    root = _parse(spider_plot(series, title="Spider"))
    lines = root.findall(".//svg:polyline", NS)
    assert len(lines) == 3
    colours = [line.get("stroke") for line in lines]
    assert colours[0] == colours[2] != colours[1]


def test_one_group_gives_one_colour():
    series = tuple(Series(f"P{i}", (Point(0, Decimal(i)),)) for i in range(4))
    root = _parse(spider_plot(series, title="blinded"))
    assert len({line.get("stroke") for line in root.findall(".//svg:polyline", NS)}) == 1


def test_waterfall_is_sorted_from_largest_increase_and_escapes_labels():
    bars = (Bar("<P1>", Decimal("-50")), Bar("P2", Decimal("30")), Bar("P3", Decimal("-10")))
    svg = waterfall_plot(bars, title="W & co")
    assert "<P1>" not in svg and "&lt;P1&gt;" in svg
    titles = [r.find("svg:title", NS).text for r in _parse(svg).findall(".//svg:rect", NS)]
    assert titles == ["P2: 30 %", "P3: -10 %", "<P1>: -50 %"]
