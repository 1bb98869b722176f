-- Webhook delivery claims walk an endpoint's open deliveries in change order and stop after a
-- batch (store/webhooks.due_batch), instead of sorting every due delivery on each claim.
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(endpoint_id, seq, id)
    WHERE status IN ('pending', 'retrying');
