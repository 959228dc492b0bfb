"""Calling other systems on a user's behalf: which addresses may be reached (allowlist),
how requests are signed (signing), when to retry (policy), and the HTTP client that puts
them together (client). Shared by the webhook sink and the http handler."""
