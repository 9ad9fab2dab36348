DROP INDEX refresh_tokens_live;
ALTER TABLE refresh_tokens DROP COLUMN user_agent;
