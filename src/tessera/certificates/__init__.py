"""Gift certificates: created, activated, used, per department."""
