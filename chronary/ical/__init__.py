"""RFC 5545: render feeds, parse imports, expand recurrences. Pure functions, no I/O."""
