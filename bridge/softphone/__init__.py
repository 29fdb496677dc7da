"""The browser softphone: the Zendesk app, the agent's identity, Twilio tokens and the page."""
