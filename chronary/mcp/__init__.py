"""MCP front door (issue 19): agents use Chronary as a tool with their own API key's scope.

- `server.ChronaryMCP`: the SDK's `MCPServer` with Chronary's tools (tools.py), each calendar as a
  resource and a "schedule a meeting" prompt; tools call the same services as REST.
- `http`: Streamable HTTP at /mcp inside the app (API-key auth, host policy, session manager run
  in the app's lifespan).
- `stdio`: `chronary mcp` for desktop clients, on the data dir or bridged to a running server.
"""
