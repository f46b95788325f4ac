"""The knowledge base: symptom signatures (signature.py), matching runs against them (matcher.py),
ranking fixes (selectors.py), curated writes (services.py) and YAML import/export (yaml_io.py)."""
