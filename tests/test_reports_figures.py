"""The dashboard's figures are pure functions of plain tables: checked without a browser."""

from __future__ import annotations

from datetime import date

import pytest

from reports import figures
from reports.selectors import CHARTS, Table

D1, D2 = date(2025, 3, 3), date(2025, 3, 10)


def annotation_texts(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_opened_and_resolved_are_two_lines_over_the_days():
    fig = figures.opened_resolved(Table(("day", "opened", "resolved"), [(D1, 3, 1), (D2, 0, 2)]))
    assert [t.name for t in fig.data] == ["Opened", "Resolved"]
    assert list(fig.data[0].x) == [D1, D2] and list(fig.data[0].y) == [3, 0]
    assert list(fig.data[1].y) == [1, 2]
    assert fig.layout.xaxis.title.text == "Day (UTC)" and fig.layout.yaxis.title.text == "Tickets"
    assert figures.points(fig) == 4


def test_the_backlog_stacks_priorities_over_statuses():
    rows = [(s, p, n) for s, base in (("New", 1), ("Triaging", 10)) for p, n in (("P1", base), ("P2", base + 1))]
    fig = figures.backlog(Table(("status", "priority", "tickets"), rows))
    assert fig.layout.barmode == "stack"
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("P1", ["New", "Triaging"], [1, 10]),
        ("P2", ["New", "Triaging"], [2, 11]),
    ]
    assert fig.layout.yaxis.title.text == "Open tickets"


def test_response_times_plot_median_and_p90_of_both_clocks_and_say_they_are_approximate():
    columns = (
        "week",
        "first_responses",
        "first_response_median_h",
        "first_response_p90_h",
        "resolved",
        "resolution_median_h",
        "resolution_p90_h",
    )
    rows = [(D1, 4, 0.5, 2.0, 3, 10.0, 40.0), (D2, 0, None, None, 0, None, None)]
    fig = figures.response_weekly(Table(columns, rows))
    assert [t.name for t in fig.data] == [
        "First response, median",
        "First response, p90",
        "Resolution, median",
        "Resolution, p90",
    ]
    assert list(fig.data[3].y) == [40.0, None]
    assert "approximate" in fig.layout.yaxis.title.text
    per_customer = figures.response_customers(Table(("customer", *columns[1:]), [("Acme", 4, 0.5, 2.0, 3, 10.0, 40.0)]))
    assert list(per_customer.data[2].y) == ["Acme"] and list(per_customer.data[2].x) == [10.0]
    assert per_customer.data[0].orientation == "h"


def test_the_breach_rate_is_a_percentage_per_week():
    fig = figures.sla_breaches(
        Table(("week", "opened", "breached", "breach_rate_pct"), [(D1, 4, 1, 25.0), (D2, 0, 0, None)])
    )
    assert list(fig.data[0].y) == [25.0, None]
    assert "(%)" in fig.layout.yaxis.title.text


def test_recipe_outcomes_are_one_bar_per_kind():
    fig = figures.recipes(Table(("recipe", "suggested", "accepted", "fixed"), [("Add -Rt0", 5, 3, 2)]))
    assert [(t.name, list(t.x)) for t in fig.data] == [("Suggested", [5]), ("Accepted", [3]), ("Fixed the ticket", [2])]
    assert fig.layout.xaxis.title.text == "Tickets"


def test_failures_symptoms_and_workload_plot_their_values():
    assert list(figures.failures_by_reason(Table(("reason", "failed_runs"), [("auth", 7)])).data[0].x) == [7]
    assert list(figures.symptoms(Table(("symptom", "runs_matched"), [("Ident lookups", 9)])).data[0].y) == [
        "Ident lookups"
    ]
    by_customer = figures.failures_by_customer(
        Table(("customer", "runs", "failed", "failure_rate_pct"), [("Acme", 10, 4, 40.0)])
    )
    assert list(by_customer.data[0].x) == [4]
    load = figures.workload(Table(("tech", "P1", "P2", "P3", "P4", "total"), [("tess", 1, 0, 2, 0, 3)]))
    assert [list(t.y) for t in load.data] == [[1], [0], [2], [0]]


EMPTY = {
    "opened-resolved": Table(("day", "opened", "resolved"), [(D1, 0, 0)]),
    "backlog": Table(("status", "priority", "tickets"), [("New", "P1", 0)]),
    "response-weekly": Table(
        (
            "week",
            "first_responses",
            "first_response_median_h",
            "first_response_p90_h",
            "resolved",
            "resolution_median_h",
            "resolution_p90_h",
        ),
        [(D1, 0, None, None, 0, None, None)],
    ),
    "response-customers": Table(("customer",), []),
    "sla-breaches": Table(("week", "opened", "breached", "breach_rate_pct"), [(D1, 0, 0, None)]),
    "symptoms": Table(("symptom", "runs_matched"), []),
    "recipes": Table(("recipe", "suggested", "accepted", "fixed"), []),
    "failures-reason": Table(("reason", "failed_runs"), []),
    "failures-customer": Table(("customer", "runs", "failed", "failure_rate_pct"), []),
    "workload": Table(("tech", "P1", "P2", "P3", "P4", "total"), []),
}


@pytest.mark.parametrize("name", list(CHARTS))
def test_a_chart_without_data_says_so_instead_of_drawing_empty_axes(name):
    fig = figures.FIGURES[name](EMPTY[name])
    assert len(fig.data) == 0 and figures.points(fig) == 0
    assert annotation_texts(fig) in ([figures.NO_DATA], ["No open tickets"])
    assert fig.layout.xaxis.visible is False


HOSTILE = '<img src=x onerror="alert(1)"><a href="javascript:alert(2)">x</a>'
LABELLED = {
    "symptoms": Table(("symptom", "runs_matched"), [(HOSTILE, 1)]),
    "recipes": Table(("recipe", "suggested", "accepted", "fixed"), [(HOSTILE, 1, 0, 0)]),
    "failures-reason": Table(("reason", "failed_runs"), [(HOSTILE, 1)]),
    "failures-customer": Table(("customer", "runs", "failed", "failure_rate_pct"), [(HOSTILE, 2, 1, 50.0)]),
    "response-customers": Table(
        ("customer", *EMPTY["response-weekly"].columns[1:]), [(HOSTILE, 1, 0.5, 1.0, 1, 2.0, 3.0)]
    ),
    "workload": Table(("tech", "P1", "P2", "P3", "P4", "total"), [(HOSTILE, 1, 0, 0, 0, 1)]),
}


@pytest.mark.parametrize("name", list(LABELLED))
def test_labels_from_titles_and_names_are_text_not_markup(name):
    # plotly renders a subset of HTML in labels (<a href>, <b>, ...): a title must show as typed.
    fig = figures.FIGURES[name](LABELLED[name])
    labels = [v for t in fig.data for v in [*(t.x or ()), *(t.y or ())] if isinstance(v, str)]
    assert labels and all("<" not in v and ">" not in v for v in labels)
    assert any(v.startswith("&lt;img src=x onerror=") for v in labels)


def test_failure_reasons_read_as_words_not_codes():
    fig = figures.failures_by_reason(
        Table(("reason", "failed_runs"), [("auth_failed", 7), ("no_banner", 3), ("unspecified", 1), ("new_kind", 1)])
    )
    assert list(fig.data[0].y) == ["Login refused", "No SSH banner", "Unspecified", "New kind"]


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_every_chart_fits_its_labels_and_keeps_the_legend_clear_of_the_axis_titles(name):
    """Long customer names were cut ("ne Schools") and the legend overlapped the x axis's title."""
    long_name = "Northwind Primary and Secondary Schools Federation"
    fig = figures.FIGURES[name](_one_row_with(name, long_name))
    assert fig.layout.yaxis.automargin and fig.layout.xaxis.automargin
    assert fig.layout.legend.y >= 1 and fig.layout.legend.yanchor == "bottom"


def _one_row_with(name: str, text: str) -> Table:
    """A one-row table for the chart with data in it: a labelled chart's label is `text`."""
    if name in LABELLED:
        table = LABELLED[name]
        return Table(table.columns, [tuple(text if v == HOSTILE else v for v in table.rows[0])])
    table = EMPTY[name]
    return Table(table.columns, [tuple(v if isinstance(v, (date, str)) else 3 for v in table.rows[0])])
