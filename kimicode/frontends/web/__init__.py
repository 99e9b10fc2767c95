"""`kimicode serve` and `kimicode web`: the runtime over HTTP (sessions, server-sent events, approvals) and a
browser UI served by the same process (DESIGN.md B.15)."""
