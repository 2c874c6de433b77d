"""Scan experiments: registration of the face template to scans with a known answer."""
