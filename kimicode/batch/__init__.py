"""`kimicode batch`: many tasks, each in its own checkout, on a local process pool or a Ray cluster."""
