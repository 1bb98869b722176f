"""msgspec structs for each resource: X (out), XCreate, XUpdate (all fields optional).

They give request validation (unknown fields rejected) and the OpenAPI schema for free.
"""
