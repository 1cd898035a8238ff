"""The HTTP edge: Site and Request subclasses, the auth wrapper, routes and the stream relay."""
