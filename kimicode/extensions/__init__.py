"""The user's extensions: hooks, custom commands, custom agents, memory files and plugins, found in
kimicode's own folders and in the layouts other coding agents use."""
