"""The domain: sending, batches, idempotency, numbers, receipts and inbound texts."""
