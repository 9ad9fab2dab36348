DROP TABLE room_audit;
DROP TABLE room_bans;
ALTER TABLE room_members DROP COLUMN muted_until;
UPDATE room_members SET role = 'member' WHERE role = 'admin';
ALTER TABLE room_members DROP CONSTRAINT room_members_role_check;
ALTER TABLE room_members ADD CONSTRAINT room_members_role_check CHECK (role IN ('owner', 'member'));
