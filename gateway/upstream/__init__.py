"""The network edge towards Google: treq calls, token refresh, project discovery."""
