"""The HTTP service (DESIGN §3, §4): an ASGI route table over a transport-free core."""
