"""The dashboard's charts: pure functions from a selector's Table to a plotly Figure.

No database, no request: each takes plain data and returns a figure, so the tests can
read traces, axis titles and values without a browser. A chart with nothing to show
says so in an annotation instead of drawing empty axes.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import plotly.graph_objects as go

from diagnostics.failure_kinds import failure_label
from reports.selectors import Table

NO_DATA = "No data for these filters"
COLORS = {"first": "#1f77b4", "resolution": "#ff7f0e", "bad": "#d62728", "good": "#2ca02c", "muted": "#7f7f7f"}
PRIORITY_COLORS = {"P1": "#d62728", "P2": "#ff7f0e", "P3": "#1f77b4", "P4": "#7f7f7f"}
OUTCOME_LABELS = {
    "suggested": "Suggested",
    "accepted": "Accepted",
    "verified": "Verified gone",
    "fixed": "Fixed the ticket",
    "rejected": "Rejected",
}
OUTCOME_COLORS = {
    "suggested": COLORS["muted"],
    "accepted": COLORS["first"],
    "verified": "#17becf",
    "fixed": COLORS["good"],
    "rejected": COLORS["bad"],
}
APPROXIMATE = "approximate: within the ±19% duration bucket"


def _layout(fig: go.Figure, *, x: str = "", y: str = "", **extra) -> go.Figure:
    # No plotly template: merging one into every figure cost ~15 ms each and 4x the page's JSON.
    # Margins grow to fit the tick labels (automargin: a long customer name is not cut to "ne Schools"),
    # and the legend sits above the plot, clear of the x axis's title.
    fig.update_layout(
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        height=340,
        template="none",
        paper_bgcolor="#fff",
        plot_bgcolor="#fff",
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        **extra,
    )
    fig.update_xaxes(title_text=x, automargin=True)
    fig.update_yaxes(title_text=y, automargin=True)
    return fig


def no_data(message: str = NO_DATA) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font={"size": 16, "color": COLORS["muted"]},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig)


def _column(table: Table, name: str) -> list:
    i = table.columns.index(name)
    return [row[i] for row in table.rows]


def _labels(table: Table, name: str) -> list:
    """A column of names (symptom titles, customers, users) as plotly text: its labels understand
    a subset of HTML (<a href>, <b>, <br>), so a title is escaped to show exactly as typed."""
    return [html.escape(v) if isinstance(v, str) else v for v in _column(table, name)]


def _has_values(table: Table, *names: str) -> bool:
    return any(v for name in names for v in _column(table, name))


def points(fig: go.Figure) -> int:
    """How many points the figure plots (for the page's data-points attribute)."""
    return sum(len(trace.x) for trace in fig.data if trace.x is not None)


def opened_resolved(table: Table) -> go.Figure:
    if not _has_values(table, "opened", "resolved"):
        return no_data()
    days = _column(table, "day")
    fig = go.Figure(
        [
            go.Scatter(
                name="Opened", x=days, y=_column(table, "opened"), mode="lines", line={"color": COLORS["first"]}
            ),
            go.Scatter(
                name="Resolved", x=days, y=_column(table, "resolved"), mode="lines", line={"color": COLORS["good"]}
            ),
        ]
    )
    return _layout(fig, x="Day (UTC)", y="Tickets")


def backlog(table: Table) -> go.Figure:
    if not _has_values(table, "tickets"):
        return no_data("No open tickets")
    statuses = list(dict.fromkeys(_column(table, "status")))
    fig = go.Figure()
    for priority in dict.fromkeys(_column(table, "priority")):
        counts = {s: n for s, p, n in table.rows if p == priority}
        fig.add_trace(
            go.Bar(
                name=priority, x=statuses, y=[counts[s] for s in statuses], marker_color=PRIORITY_COLORS.get(priority)
            )
        )
    return _layout(fig, x="Status", y="Open tickets", barmode="stack")


def _response_traces(fig: go.Figure, x: list, table: Table, *, horizontal: bool = False) -> None:
    for column, name, color, dash in (
        ("first_response_median_h", "First response, median", COLORS["first"], "solid"),
        ("first_response_p90_h", "First response, p90", COLORS["first"], "dot"),
        ("resolution_median_h", "Resolution, median", COLORS["resolution"], "solid"),
        ("resolution_p90_h", "Resolution, p90", COLORS["resolution"], "dot"),
    ):
        values = _column(table, column)
        if horizontal:
            fig.add_trace(
                go.Bar(
                    name=name,
                    y=x,
                    x=values,
                    orientation="h",
                    marker_color=color,
                    opacity=1.0 if dash == "solid" else 0.5,
                )
            )
        else:
            fig.add_trace(
                go.Scatter(name=name, x=x, y=values, mode="lines+markers", line={"color": color, "dash": dash})
            )


def response_weekly(table: Table) -> go.Figure:
    if not _has_values(table, "first_responses", "resolved"):
        return no_data()
    fig = go.Figure()
    _response_traces(fig, _column(table, "week"), table)
    return _layout(fig, x="Week starting (UTC)", y=f"Hours ({APPROXIMATE})", yaxis_type="log")


def response_customers(table: Table) -> go.Figure:
    if not table.rows:
        return no_data()
    fig = go.Figure()
    _response_traces(fig, _labels(table, "customer"), table, horizontal=True)
    fig = _layout(fig, x=f"Hours ({APPROXIMATE})", y="Customer", barmode="group", xaxis_type="log")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=max(340, 80 + 60 * len(table.rows)))
    return fig


def sla_breaches(table: Table) -> go.Figure:
    if not _has_values(table, "opened"):
        return no_data()
    fig = go.Figure(
        [
            go.Scatter(
                name="Breach rate",
                x=_column(table, "week"),
                y=_column(table, "breach_rate_pct"),
                mode="lines+markers",
                line={"color": COLORS["bad"]},
                customdata=list(zip(_column(table, "breached"), _column(table, "opened"), strict=True)),
                hovertemplate="%{y}% (%{customdata[0]} of %{customdata[1]})<extra></extra>",
            )
        ]
    )
    return _layout(fig, x="Week opened (UTC)", y="Tickets that breached an SLA target (%)", yaxis_rangemode="tozero")


def _horizontal_bars(table: Table, *, label: str, value: str, x: str, y: str, color: str) -> go.Figure:
    if not table.rows:
        return no_data()
    fig = go.Figure(
        [go.Bar(name=x, y=_labels(table, label), x=_column(table, value), orientation="h", marker_color=color)]
    )
    fig = _layout(fig, x=x, y=y)
    fig.update_yaxes(autorange="reversed")
    return fig


def symptoms(table: Table) -> go.Figure:
    return _horizontal_bars(
        table, label="symptom", value="runs_matched", x="Runs where it matched", y="Symptom", color=COLORS["first"]
    )


def recipes(table: Table) -> go.Figure:
    if not table.rows:
        return no_data()
    names = _labels(table, "recipe")
    fig = go.Figure(
        [
            go.Bar(
                name=OUTCOME_LABELS.get(kind, kind),
                y=names,
                x=_column(table, kind),
                orientation="h",
                marker_color=OUTCOME_COLORS.get(kind),
            )
            for kind in table.columns[1:]
        ]
    )
    fig = _layout(fig, x="Tickets", y="Recipe", barmode="group")
    fig.update_yaxes(autorange="reversed")
    return fig


def failures_by_reason(table: Table) -> go.Figure:
    """Reasons in words (the table and its CSV keep the codes: "unspecified" for runs with none)."""
    worded = Table(
        table.columns,
        [("Unspecified" if reason == "unspecified" else failure_label(reason), n) for reason, n in table.rows],
    )
    return _horizontal_bars(
        worded, label="reason", value="failed_runs", x="Failed runs", y="Reason", color=COLORS["bad"]
    )


def failures_by_customer(table: Table) -> go.Figure:
    if not table.rows:
        return no_data()
    fig = go.Figure(
        [
            go.Bar(
                name="Failed runs",
                y=_labels(table, "customer"),
                x=_column(table, "failed"),
                orientation="h",
                marker_color=COLORS["bad"],
                customdata=list(zip(_column(table, "runs"), _column(table, "failure_rate_pct"), strict=True)),
                hovertemplate="%{x} of %{customdata[0]} runs (%{customdata[1]}%)<extra></extra>",
            )
        ]
    )
    fig = _layout(fig, x="Failed runs", y="Customer")
    fig.update_yaxes(autorange="reversed")
    return fig


def workload(table: Table) -> go.Figure:
    if not table.rows:
        return no_data("No open tickets")
    techs = _labels(table, "tech")
    fig = go.Figure(
        [go.Bar(name=p, x=techs, y=_column(table, p), marker_color=color) for p, color in PRIORITY_COLORS.items()]
    )
    return _layout(fig, x="Assignee", y="Open tickets", barmode="stack")


FIGURES: dict[str, Callable[[Table], go.Figure]] = {
    "opened-resolved": opened_resolved,
    "backlog": backlog,
    "response-weekly": response_weekly,
    "response-customers": response_customers,
    "sla-breaches": sla_breaches,
    "symptoms": symptoms,
    "recipes": recipes,
    "failures-reason": failures_by_reason,
    "failures-customer": failures_by_customer,
    "workload": workload,
}
