"""The managers' dashboard page and the CSV export of each chart's data."""

from __future__ import annotations

import csv
import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from reports import figures, selectors
from reports.forms import DashboardFilterForm
from triage import access
from triage import selectors as desk_selectors

FORMULA_START = ("=", "+", "-", "@")


def csv_cell(value) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_url_name(chart: str) -> str:
    return f"dashboard_csv_{chart.replace('-', '_')}"


# Charts counted live from open tickets; every other chart reads the rollups, which change only
# when a refresh runs, so their finished figures are cached until the next refresh.
LIVE_CHARTS = {"backlog", "workload"}
FIGURE_CACHE_SECONDS = 3600


def _chart(name: str, table, query: str) -> dict:
    fig = figures.FIGURES[name](table)
    return {
        "name": name,
        "title": selectors.CHARTS[name][0],
        "script_id": f"figure-{name}",
        "figure": json.loads(fig.to_json()),
        "points": figures.points(fig),
        "csv_url": f"{reverse(csv_url_name(name))}?{query}",
    }


def _rollup_chart(*, user, name: str, filters, query: str, refreshed_at) -> dict:
    def build() -> dict:
        return _chart(name, selectors.chart_table(user=user, name=name, filters=filters), query)

    if refreshed_at is None:
        return build()
    key = f"dashboard:{name}:{filters.start}:{filters.end}:{filters.customer_id}:{refreshed_at.isoformat()}"
    chart = cache.get_or_set(key, build, FIGURE_CACHE_SECONDS)
    assert chart is not None  # get_or_set returns None only when the default is None
    return chart


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    access.dashboard_access(user=request.user)
    form = DashboardFilterForm(request.GET or None)
    filters = form.filters()
    query = urlencode({"start": filters.start, "end": filters.end, "customer": filters.customer_id or ""})
    refreshed_at = selectors.rollups_refreshed_at()
    charts = []
    for name in selectors.CHARTS:
        if name in LIVE_CHARTS:
            charts.append(_chart(name, selectors.chart_table(user=request.user, name=name, filters=filters), query))
        else:
            charts.append(
                _rollup_chart(user=request.user, name=name, filters=filters, query=query, refreshed_at=refreshed_at)
            )
    return render(
        request,
        "reports/dashboard.html",
        {
            "form": form,
            "filters": filters,
            "charts": charts,
            "customers": desk_selectors.customer_choices(),
            "refreshed_at": refreshed_at,
        },
    )


@login_required
@require_GET
def dashboard_csv(request: HttpRequest, chart: str) -> HttpResponse:
    access.dashboard_access(user=request.user)
    if chart not in selectors.CHARTS:
        raise Http404
    filters = DashboardFilterForm(request.GET or None).filters()
    table = selectors.chart_table(user=request.user, name=chart, filters=filters)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{chart}-{filters.start}-{filters.end}.csv"'
    writer = csv.writer(response)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([csv_cell(v) for v in row])
    return response
