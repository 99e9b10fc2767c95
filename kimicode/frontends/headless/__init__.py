"""Headless runs (`kimicode -p`): text, json or stream-json output, exit codes."""
