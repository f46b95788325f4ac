from django.urls import path

from reports import views
from reports.selectors import CHARTS

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    # One named URL per chart (dashboard_csv_opened_resolved, ...), all served by one view.
    *(
        path(f"dashboard/{name}.csv", views.dashboard_csv, {"chart": name}, name=views.csv_url_name(name))
        for name in CHARTS
    ),
]
