"""Developer tools: the Zendesk sandbox, the demo, replay and capture of recorded calls."""
