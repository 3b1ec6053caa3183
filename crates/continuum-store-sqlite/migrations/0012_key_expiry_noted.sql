-- When a key's expiry was recorded (`key.expired` event and audit entry), so that it is
-- recorded once, whichever process notices it first (milliseconds; NULL: not yet).
ALTER TABLE api_keys ADD COLUMN expiry_noted_at INTEGER;
