"""Templates, recipients, the outbox and the channels that send."""
