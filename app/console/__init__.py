"""The finance admins' console: a small single-page app at `/console` on the public REST API."""
