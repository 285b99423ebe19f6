"""Models of the traffic app."""
