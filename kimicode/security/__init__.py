"""Deciding what may run: trust, rules, shell parsing, sandbox, secrets."""
