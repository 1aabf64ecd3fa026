"""Partners, departments, logins and API keys."""
