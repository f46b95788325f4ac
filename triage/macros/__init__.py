"""Macros: canned replies with placeholders and ticket actions, managed by admins, applied by techs."""
