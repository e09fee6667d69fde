"""The dashboard's chart geometry (pure functions) and its SVG rendering through the templates."""

from __future__ import annotations

import importlib.resources

from modelops.web import charts
from modelops.web.rendering import environment


def test_ticks_are_round_and_cover_the_range() -> None:
    assert charts.nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    ticks = charts.nice_ticks(3.2, 97.0)
    assert ticks[0] <= 3.2 and ticks[-1] >= 97.0 and ticks == sorted(ticks)
    assert charts.nice_ticks(5, 5)[-1] > 5  # a flat range still gets an axis


def test_bars_start_at_zero_and_scale_to_their_values() -> None:
    chart = charts.bar_chart(["a", "b"], [10, 40])
    assert chart is not None
    low, high = chart.bars
    assert high.h == 4 * low.h  # heights proportional to the values, from zero
    assert low.y + low.h == chart.frame.bottom == high.y + high.h
    assert charts.bar_chart([], []) is None
    assert charts.bar_chart(["x"], [float("nan")]) is None


def test_a_histogram_needs_one_more_edge_than_counts() -> None:
    assert charts.histogram([0, 1, 2], [3, 4]) is not None
    assert charts.histogram([0, 1], [3, 4]) is None


def test_a_metric_across_versions_leaves_gaps_for_versions_without_it() -> None:
    chart = charts.line_chart(["1.0", "1.1", "1.2"], [0.8, None, 0.9])
    assert chart is not None
    assert [p.label for p in chart.points] == ["1.0", "1.2"]
    assert chart.path.count("M") == 2  # the line is lifted over the gap
    assert charts.line_chart(["1.0"], [None]) is None


def test_confusion_matrix_shades_by_count_and_rejects_ragged_input() -> None:
    chart = charts.heatmap(["cat", "dog"], [[8, 2], [0, 10]])
    assert chart is not None
    shades = {c.text: c.shade for c in chart.cells}
    assert shades["10"] == 1.0 and shades["0"] < shades["2"] < shades["8"]
    assert charts.heatmap(["a", "b"], [[1, 2]]) is None


def test_roc_curve_stays_in_the_unit_square() -> None:
    assert charts.roc_chart([0, 0.1, 1], [0, 0.8, 1]) is not None
    assert charts.roc_chart([0, 2], [0, 1]) is None


def test_drift_bars_colour_by_level_and_draw_both_thresholds() -> None:
    chart = charts.drift_bars([("a", 1.2, "significant"), ("b", 0.05, "stable"), ("c", 0.2, "moderate")])
    assert chart is not None
    assert [b.cls for b in chart.bars] == ["bad", "ok", "warn"]
    (warn_x, _), (bad_x, _) = chart.thresholds
    assert chart.frame.left < warn_x < bad_x < chart.frame.right


def test_charts_render_as_svg_with_labels_escaped() -> None:
    template = environment().from_string(
        '{% import "_charts.html" as ch %}{{ ch.bars(chart, title) }}'
    )
    html = template.render(chart=charts.bar_chart(["<b>x</b>", "y"], [1, 2]), title="<script>t</script>")
    assert "<svg" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<script>" not in html and "style=" not in html


def test_templates_and_static_files_ship_inside_the_package() -> None:
    root = importlib.resources.files("modelops.web")
    for name in ("templates/base.html", "templates/job.html", "static/app.css", "static/app.js", "static/job.js"):
        assert root.joinpath(name).is_file(), name
