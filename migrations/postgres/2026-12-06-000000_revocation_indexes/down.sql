DROP INDEX api_tokens_revoked_at;
DROP INDEX refresh_tokens_revoked_at;
