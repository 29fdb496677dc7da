"""Bridge Twilio Voice to Zendesk Talk Partner Edition."""
