"""The gemini wire format."""
