"""A strict emulator of Google's Cloud Code ``v1internal`` API and OAuth endpoints.

For integration tests, demos and benchmarks (no network to Google needed).
Modules: ``catalogue`` (models, limits), ``content`` (validation, token
counting, answers), ``state`` (accounts, tokens, faults, records), ``app``
(the Klein app and factories), ``testing`` (run it in-process), ``tap``
(``twist antigravity-emulator``).
"""
