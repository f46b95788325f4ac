from django.urls import path

from diagnostics import views

urlpatterns = [
    path("tickets/<int:ticket_id>/collect/", views.collect, name="collect"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("runs/<int:run_id>/evidence/<int:step>/raw", views.evidence_raw, name="evidence_raw"),
    path("servers/<int:server_id>/access/", views.server_access_setup, name="server_access"),
    path("servers/<int:server_id>/access/known-hosts/", views.host_keys_import, name="host_keys_import"),
    path("servers/<int:server_id>/access/keys/<int:key_id>/", views.host_key_decide, name="host_key_decide"),
    path("playbooks/", views.playbook_list, name="playbooks"),
    path("playbooks/new/", views.playbook_edit, name="playbook_new"),
    path("playbooks/<int:playbook_id>/", views.playbook_edit, name="playbook_edit"),
    path("audit/", views.audit, name="audit"),
]
