"""OAuth2 server: clients, tokens, scopes."""
