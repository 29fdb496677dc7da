"""Twilio's API as the bridge calls it, over one session: REST (typed errors), recording media, routing's moves."""
