"""The store: the only package that contains SQL. Everything above it sees plain dicts."""
