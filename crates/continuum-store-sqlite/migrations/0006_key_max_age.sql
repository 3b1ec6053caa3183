-- How long a key may live before it is due for rotation (milliseconds; NULL: no limit).
ALTER TABLE api_keys ADD COLUMN max_age_ms INTEGER;
