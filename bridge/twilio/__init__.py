"""Twilio's REST API, as the bridge calls it: one session, its errors typed by meaning, and the moves it sends."""
