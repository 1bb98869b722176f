"""Domain rules. No SQL (that is `store/`), no HTTP types (that is `api/`)."""
