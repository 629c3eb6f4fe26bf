"""faregate: a self-hosted, OpenAI-compatible LLM gateway whose whole behaviour is declared in routes.yaml."""

__version__ = "0.1.0"
