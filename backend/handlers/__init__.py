"""Hand-written implementations of the handler interfaces in generated/handlers.py."""
