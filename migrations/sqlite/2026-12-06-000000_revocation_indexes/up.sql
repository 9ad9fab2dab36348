-- What each node reads every 2 seconds: the sessions and API tokens revoked since its last look.
CREATE INDEX refresh_tokens_revoked_at ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX api_tokens_revoked_at ON api_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
