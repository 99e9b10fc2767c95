"""The interactive REPL: prompt-toolkit input, rich rendering, slash commands, approvals."""
