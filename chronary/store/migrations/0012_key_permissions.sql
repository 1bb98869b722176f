-- Connect API permission keys per API key (chronary/permissions.py): a JSON list, or NULL for the
-- defaults of the key's kind (org keys: all of them; agent keys: none).
ALTER TABLE api_keys ADD COLUMN permissions TEXT;
