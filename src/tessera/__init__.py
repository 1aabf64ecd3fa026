"""Tessera: promo codes, gift certificates and the messages that deliver them."""
