from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.throttling import rate_limited_login
from composition import views as composition
from triage.views import customers, desk, sla, tickets, users

urlpatterns = [
    path("", composition.home, name="home"),
    path("login/", rate_limited_login(
        auth_views.LoginView.as_view(template_name="login.html", redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", desk.healthz, name="healthz"),
    path("overview/", desk.overview, name="overview"),
    path("tickets/", tickets.queue, name="queue"),
    path("tickets/new/", tickets.ticket_new, name="ticket_new"),
    path("tickets/<id:ticket_id>/", tickets.ticket_detail, name="ticket"),
    path("tickets/<id:ticket_id>/reply/", tickets.ticket_reply, name="ticket_reply"),
    path("tickets/<id:ticket_id>/note/", tickets.ticket_note, name="ticket_note"),
    path("tickets/<id:ticket_id>/drafts/reply/", tickets.ticket_draft_reply, name="ticket_draft_reply"),
    path("tickets/<id:ticket_id>/presence/", tickets.ticket_presence, name="ticket_presence"),
    path("tickets/<id:ticket_id>/drafts/note/", tickets.ticket_draft_note, name="ticket_draft_note"),
    path("tickets/<id:ticket_id>/assign/", tickets.ticket_assign, name="ticket_assign"),
    path("tickets/<id:ticket_id>/status/", tickets.ticket_status, name="ticket_status"),
    path("tickets/<id:ticket_id>/priority/", tickets.ticket_priority, name="ticket_priority"),
    path("tickets/<id:ticket_id>/tags/", tickets.ticket_tags, name="ticket_tags"),
    path("tickets/<id:ticket_id>/servers/", tickets.ticket_servers, name="ticket_servers"),
    path("tickets/<id:ticket_id>/people/", tickets.ticket_people, name="ticket_people"),
    path("tickets/<id:ticket_id>/links/", tickets.ticket_link, name="ticket_link"),
    path("tickets/<id:ticket_id>/links/remove/", tickets.ticket_unlink, name="ticket_unlink"),
    path("tickets/<id:ticket_id>/merge/", tickets.ticket_merge, name="ticket_merge"),
    path("customers/", customers.customer_list, name="customers"),
    path("customers/new/", customers.customer_edit, name="customer_new"),
    path("customers/<id:customer_id>/", customers.customer_detail, name="customer"),
    path("customers/<id:customer_id>/edit/", customers.customer_edit, name="customer_edit"),
    path("servers/new/", customers.server_edit, name="server_new"),
    path("servers/<id:server_id>/", customers.server_detail, name="server"),
    path("servers/<id:server_id>/edit/", customers.server_edit, name="server_edit"),
    path("sla/", sla.sla_settings, name="sla_settings"),
    path("sla/calendars/new/", sla.calendar_edit, name="calendar_new"),
    path("sla/calendars/<id:calendar_id>/", sla.calendar_edit, name="calendar_edit"),
    path("sla/tiers/<id:tier_id>/", sla.tier_edit, name="tier_edit"),
    path("users/", users.user_list, name="users"),
    path("users/new/", users.user_new, name="user_new"),
    path("users/<id:user_id>/", users.user_edit, name="user_edit"),
    path("", include("triage.macros.urls")),
    path("", include("triage.contacts.urls")),
    path("", include("triage.queue.urls")),
    path("", include("diagnostics.urls")),
    path("", include("reports.urls")),
    path("mail/", include("mailgate.urls")),
    path("api/v1/", include("api.urls")),
    path("", include("webhooks.urls")),
]
