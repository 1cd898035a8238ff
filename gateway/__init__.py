"""antigravity-gateway: the Gemini API served through Cloud Code ``v1internal``."""

__version__ = "0.1.0"
