from django.urls import path

from diagnostics import sweep_views, views
from diagnostics.knowledge import verdict_views as verdicts
from diagnostics.knowledge import views as kb

urlpatterns = [
    path("tickets/<id:ticket_id>/collect/", views.collect, name="collect"),
    path("tickets/<id:ticket_id>/collections/", views.ticket_collections, name="ticket_collections"),
    path("runs/<id:run_id>/", views.run_detail, name="run"),
    path("runs/<id:run_id>/evidence/<id:step>/raw", views.evidence_raw, name="evidence_raw"),
    path("servers/<id:server_id>/access/", views.server_access_setup, name="server_access"),
    path("servers/<id:server_id>/access/known-hosts/", views.host_keys_import, name="host_keys_import"),
    path("servers/<id:server_id>/access/ssh-trust/", views.ssh_trust, name="ssh_trust"),
    path("servers/<id:server_id>/access/keys/<id:key_id>/", views.host_key_decide, name="host_key_decide"),
    path("servers/<id:server_id>/access/jump-chain/", views.server_jump_chain, name="server_jump_chain"),
    path("servers/<id:server_id>/access/jump-hosts/new/", views.jump_host_new, name="jump_host_new"),
    path("jump-hosts/<id:jump_host_id>/", views.jump_host_edit, name="jump_host"),
    path("jump-hosts/<id:jump_host_id>/keys/<id:key_id>/", views.jump_host_key_decide, name="jump_host_key_decide"),
    path("playbooks/", views.playbook_list, name="playbooks"),
    path("playbooks/new/", views.playbook_edit, name="playbook_new"),
    path("playbooks/<id:playbook_id>/", views.playbook_edit, name="playbook_edit"),
    path("audit/", views.audit, name="audit"),
    path("customers/<id:customer_id>/sweeps/", sweep_views.sweep_start, name="sweep_start"),
    path("customers/<id:customer_id>/sweep-schedules/", sweep_views.sweep_schedule_add, name="sweep_schedule_add"),
    path("sweep-schedules/<id:schedule_id>/delete/", sweep_views.sweep_schedule_delete, name="sweep_schedule_delete"),
    path("sweeps/<id:sweep_id>/", sweep_views.sweep_detail, name="sweep"),
    path("sweeps/<id:sweep_id>/tickets/", sweep_views.sweep_file_tickets, name="sweep_file_tickets"),
    # The knowledge base. Entry pages sit under the key, so "new" and "try" never clash with a key.
    path("kb/", kb.kb_list, name="kb"),
    path("kb/symptoms/new/", kb.symptom_edit, name="kb_symptom_new"),
    path("kb/symptoms/try/", kb.symptom_try, name="kb_symptom_try"),
    path("kb/symptoms/<slug:key>/edit/", kb.symptom_edit, name="kb_symptom_edit"),
    path("kb/symptoms/<slug:key>/history/", kb.symptom_history, name="kb_symptom_history"),
    path("kb/recipes/new/", kb.recipe_edit, name="kb_recipe_new"),
    path("kb/recipes/try/", kb.recipe_try, name="kb_recipe_try"),
    path("kb/recipes/<slug:key>/edit/", kb.recipe_edit, name="kb_recipe_edit"),
    path("kb/recipes/<slug:key>/history/", kb.recipe_history, name="kb_recipe_history"),
    # The verdicts on the fixes this app suggests on a ticket (answered with the ticket page's parts).
    path("tickets/<id:ticket_id>/fixes/accept/", verdicts.ticket_accept_fix, name="ticket_accept_fix"),
    path("tickets/<id:ticket_id>/fixes/reject/", verdicts.ticket_reject_fix, name="ticket_reject_fix"),
    path("tickets/<id:ticket_id>/fixes/resolve/", verdicts.ticket_resolve_with_fix, name="ticket_resolve_with_fix"),
    path("tickets/<id:ticket_id>/fixes/verify/", verdicts.ticket_verify_fix, name="ticket_verify_fix"),
    path("tickets/<id:ticket_id>/possible/settle/", verdicts.ticket_settle_possible, name="ticket_settle_possible"),
]
