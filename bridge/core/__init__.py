"""The pure core: the CallEvent vocabulary, the call state machine and the actions it decides."""
