"""The Connect API's rules: connections of API-key providers, proxy, actions, inbound events."""
