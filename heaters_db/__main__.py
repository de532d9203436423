"""`python -m heaters_db ...` is the `heaters-db` command."""

from heaters_db.cli import main

main()
