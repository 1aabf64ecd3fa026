"""Promo-code groups and codes: look-up, activation, issue, uploads."""
