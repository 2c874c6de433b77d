"""One-off generators of the assets committed under ``jaxface/assets``."""
