"""Carts, promo actions and purchases."""
