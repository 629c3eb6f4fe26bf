"""One request's way through the gateway, whatever its wire format: parse, prepare, execute, render, settle."""
