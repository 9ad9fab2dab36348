-- Full-text search (CONTRACT-2 "Search"): a generated tsvector of each body, so an edit or a delete (body
-- set to '') changes it in the same statement, and a GIN index over it. 'simple': no stemming, no stop
-- words, the words as written (lowercased), like SQLite's FTS5 unicode61.
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
