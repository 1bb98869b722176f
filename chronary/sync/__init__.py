"""Two-way sync with provider accounts: one Provider interface, one engine, one push queue."""
