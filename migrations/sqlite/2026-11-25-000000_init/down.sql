DROP TABLE messages;
DROP TABLE room_members;
DROP TABLE rooms;
DROP TABLE api_tokens;
DROP TABLE refresh_tokens;
DROP TABLE users;
