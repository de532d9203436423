"""The sorting page (`heaters-db sort`): a person picks, for an anchor clip, the most similar of
the candidates the database proposes; each choice is one row in clip_sorting_events.

Needs the `web` extra (starlette, uvicorn, jinja2). `create_app` lives in heaters_db.web.app.
"""
