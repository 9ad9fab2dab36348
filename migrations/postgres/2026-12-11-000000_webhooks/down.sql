ALTER TABLE notifications DROP COLUMN webhook_id;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhooks;
