"""The wire, as pure functions: no Twisted imports, no I/O, unit-tested to the byte."""
