"""OpenAI- and Anthropic-compatible front doors: pure translators to and from Gemini.

Nothing in this package does I/O or imports Twisted: the web layer
(``gateway.web.compat_routes``) routes, authenticates, fetches remote images
and relays streams; these modules only turn one JSON shape into another.
``/work/shared/COMPAT.md`` (the translation reference) is the specification.
"""
