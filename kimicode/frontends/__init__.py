"""Front ends: the REPL, headless runs and the ACP agent, siblings over one Runtime and its events.

`common/` holds what they share (media loading, session opening, signals, integrations); `launch.py` is the
CLI's door into them. No front end imports another.
"""
