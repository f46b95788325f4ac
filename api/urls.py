from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from api.views import accounts, alerts, collections, docs, knowledge, servers, sweeps, tickets

app_name = "api"

urlpatterns = [
    path("auth/token/", accounts.PasswordLogin.as_view(), name="token_login"),
    path("tokens/", accounts.TokenList.as_view(), name="tokens"),
    path("tokens/<id:token_id>/", accounts.TokenDetail.as_view(), name="token"),
    path("tickets/", tickets.TicketList.as_view(), name="tickets"),
    path("tickets/<id:ticket_id>/", tickets.TicketDetail.as_view(), name="ticket"),
    path("tickets/<id:ticket_id>/comments/", tickets.TicketComments.as_view(), name="ticket_comments"),
    path("tickets/<id:ticket_id>/merge/", tickets.TicketMerge.as_view(), name="ticket_merge"),
    path("tickets/<id:ticket_id>/runs/", collections.TicketRuns.as_view(), name="ticket_runs"),
    path("servers/", servers.ServerList.as_view(), name="servers"),
    path("servers/<id:server_id>/", servers.ServerDetail.as_view(), name="server"),
    path("playbooks/", collections.PlaybookList.as_view(), name="playbooks"),
    path("runs/<id:run_id>/", collections.RunDetail.as_view(), name="run"),
    path("runs/<id:run_id>/matches/", collections.RunMatches.as_view(), name="run_matches"),
    path("runs/<id:run_id>/evidence/<id:step>/raw/", collections.EvidenceRaw.as_view(), name="evidence_raw"),
    path("customers/<id:customer_id>/sweeps/", sweeps.CustomerSweeps.as_view(), name="customer_sweeps"),
    path("sweeps/<id:sweep_id>/", sweeps.SweepDetail.as_view(), name="sweep"),
    path("kb/export/", knowledge.KbExport.as_view(), name="kb_export"),
    path("kb/import/", knowledge.KbImport.as_view(), name="kb_import"),
    path("alerts/", alerts.Alerts.as_view(), name="alerts"),
    # The schema and its documentation describe the API, not the desk's data: public.
    path(
        "schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]), name="schema"
    ),
    path("docs/", docs.api_docs, name="docs"),
]
