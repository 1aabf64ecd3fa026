"""Parsing of uploaded code and certificate files."""
