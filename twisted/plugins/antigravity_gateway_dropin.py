# No __init__.py next to this file, ever: see TWISTED.md "Plugins and packaging".
# Kept import-light: gateway.tap / gateway.emulator.tap load only when used.
from twisted.application.service import ServiceMaker

antigravityGateway = ServiceMaker(
    "antigravity-gateway",
    "gateway.tap",
    "Gemini API gateway over Cloud Code v1internal and a pool of Google accounts",
    "antigravity-gateway",
)

antigravityEmulator = ServiceMaker(
    "antigravity-emulator",
    "gateway.emulator.tap",
    "A strict emulator of Cloud Code v1internal and Google's OAuth token endpoint (for tests and demos)",
    "antigravity-emulator",
)
