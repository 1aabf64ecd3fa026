"""The eSputnik-compatible messaging face: events, messages, workflows, delivery."""
