-- A session is a refresh-token family (the `sid` of its access tokens); its live token is the one neither
-- used nor revoked. The client that signed in or last refreshed, shown in `GET /me/sessions`.
ALTER TABLE refresh_tokens ADD COLUMN user_agent TEXT;
-- What `GET /me/sessions` and `POST /auth/logout-all` read: a user's live tokens.
CREATE INDEX refresh_tokens_live ON refresh_tokens (user_id) WHERE used_at IS NULL AND revoked_at IS NULL;
