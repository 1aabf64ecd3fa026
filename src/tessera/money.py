"""Money amounts: what every face accepts as a price, a discount or a certificate's value."""

from decimal import Decimal

#: The largest amount the NUMERIC(14, 2) columns hold.
MAX_AMOUNT = Decimal("999999999999.99")
