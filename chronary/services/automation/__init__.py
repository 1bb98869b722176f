"""Automation: flows, triggers, executions (Connect API issue 17)."""
