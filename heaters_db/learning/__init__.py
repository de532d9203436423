"""The learning loop against the database: read events and base vectors (data), train and gate
a head through `heaters_db.heads` (jobs), store it (store), re-project clips and build its index
(reproject), and the quality report (report).

`heaters_db.heads` is the pure half (torch and numpy only); this package is the only one that
joins it to PostgreSQL.
"""
