"""The composition layer: what joins the apps together and so may import any of them.

triage is the desk (tickets, customers, servers); diagnostics and mailgate build on it; webhooks,
api and reports on those. Nothing imports this package (tests/test_import_graph.py checks both),
so what lives here cannot close an import cycle: operator commands that span every app now
(seed_demo, setup_roles, rotate_credentials).
"""
