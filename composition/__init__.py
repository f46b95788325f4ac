"""The composition layer: what joins the apps together and so may import any of them.

triage is the desk (tickets, customers, servers); diagnostics and mailgate build on it; webhooks,
api and reports on those. Only the project's wiring (the root URLconf) imports this package
(tests/test_import_graph.py checks it), so nothing here can close an import cycle: a tech's home
page (their tickets and their collections), retention, which empties evidence, raw mail and
attachments alike (`manage.py prune`, and daily from beat), and the operator commands that span
every app (seed_demo, setup_roles, rotate_credentials).
"""
