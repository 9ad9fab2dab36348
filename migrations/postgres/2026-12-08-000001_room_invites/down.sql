DROP TABLE room_invites;
