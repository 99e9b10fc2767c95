"""`kimicode acp`: an Agent Client Protocol agent on stdio, for editors (Zed, JetBrains IDEs, ...).

server.py speaks the protocol's agent methods; session.py runs one editor session over the shared run
assembly; toolcalls.py turns tool calls into what editors show; prompt.py turns prompt blocks into the
model's input; editor.py serves the tools' files and commands through the editor; stdio.py keeps stdout
for protocol messages alone.
"""
