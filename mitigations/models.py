"""Models of the mitigations app."""
