"""What every front end shares: media loading, opening a session, signals, a tool call as text."""
