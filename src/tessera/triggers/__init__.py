"""What starts workflows: events and newly added customer tags (SPEC §4, §8).

Below every domain that fires them (customers, promo codes, the messaging face) and below the
workflow engine that runs what they start (``messaging.workflows``), so imports run one way: the
domains call down into this package, and the engine reads the runs it wrote from the database.
Its SQL writes the events and workflow runs tables that ``messaging.models`` defines.
"""
