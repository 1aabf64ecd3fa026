"""The admin UI (SPanel) at ``/admin``: server-rendered pages for marketers and store staff."""
