"""heaters-db: trick/spot similarity for video clip libraries, inside PostgreSQL."""

__version__ = "0.1.0"
